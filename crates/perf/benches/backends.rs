//! Flex vs NdArray on the CPU: matmul GFLOP/s, a MiniLM encoder layer forward and LoRA
//! forward + backward, and the full 6-layer encoder forward (see `docs/BACKENDS.md`).
//!
//! Run with `cargo bench -p imdb-lora-perf --bench backends`. Criterion prints each
//! benchmark as it goes (matmul throughput in `Gelem/s`, which is GFLOP/s since one element
//! is set to one floating-point operation, `2·n³` per matmul); at the end a summary table is
//! printed from criterion's own medians, with GFLOP/s worked out as `2·n³ / median`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use imdb_lora_perf::{
    BATCH, LAYERS, MATMUL_SIZES, SEQ, criterion_dir, encoder_layer, full_model, hidden_states,
    input_ids, layer_forward_flops, lora_encoder_layer, matmul_flops, median_ns, minilm_config,
    padding_mask,
};

use imdb_lora_encoder::{AttentionMask, KernelBackend};

/// The two CPU backends, f32, as the rest of the workspace names them.
const BACKENDS: [&str; 2] = ["flex", "ndarray"];

fn sync<B: Backend>(device: &B::Device) {
    B::sync(device).expect("backend sync");
}

fn matmul<B: Backend>(c: &mut Criterion, name: &str) {
    let device = B::Device::default();
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    for n in MATMUL_SIZES {
        B::seed(&device, n as u64);
        let a = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        group.throughput(Throughput::Elements(matmul_flops(n)));
        group.bench_with_input(BenchmarkId::new(name, n), &n, |bench, _| {
            bench.iter(|| {
                let out = a.clone().matmul(b.clone());
                sync::<B>(&device);
                black_box(out)
            });
        });
    }
    group.finish();
}

fn layer_forward<B: KernelBackend>(c: &mut Criterion, name: &str) {
    let device = B::Device::default();
    let layer = encoder_layer::<B>(&device);
    let hidden = hidden_states::<B>(BATCH, SEQ, &device);
    let mask = AttentionMask::new(padding_mask::<B>(BATCH, SEQ, &device));
    let mut group = c.benchmark_group("layer_forward");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(layer_forward_flops(BATCH, SEQ)));
    group.bench_function(name, |bench| {
        bench.iter(|| {
            let out = layer.forward(hidden.clone(), &mask);
            sync::<B>(&device);
            black_box(out)
        });
    });
    group.finish();
}

fn layer_lora_train<B: Backend>(c: &mut Criterion, name: &str)
where
    Autodiff<B>: KernelBackend,
{
    // The autodiff backend's device (the same type as B's, which the where clause hides).
    let device = Default::default();
    let layer = lora_encoder_layer::<Autodiff<B>>(&device).expect("LoRA layer");
    let hidden = hidden_states::<Autodiff<B>>(BATCH, SEQ, &device);
    let mask = AttentionMask::new(padding_mask::<Autodiff<B>>(BATCH, SEQ, &device));

    // Once, outside the timing: only the adapters receive a gradient.
    let grads = layer.forward(hidden.clone(), &mask).mean().backward();
    let query = &layer.attention.self_attention.query;
    let adapter = query.lora.as_ref().expect("query adapter");
    assert!(adapter.lora_a.grad(&grads).is_some() && adapter.lora_b.grad(&grads).is_some());
    assert!(
        query
            .base_layer
            .float()
            .unwrap()
            .weight
            .grad(&grads)
            .is_none()
    );
    assert!(
        layer
            .intermediate
            .dense
            .base_layer
            .float()
            .unwrap()
            .weight
            .grad(&grads)
            .is_none()
    );
    drop(grads);

    let mut group = c.benchmark_group("layer_lora_fwd_bwd");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function(name, |bench| {
        bench.iter(|| {
            let grads = layer.forward(hidden.clone(), &mask).mean().backward();
            sync::<Autodiff<B>>(&device);
            black_box(grads)
        });
    });
    group.finish();
}

fn model_forward<B: KernelBackend>(c: &mut Criterion, name: &str) {
    let device = B::Device::default();
    let model = full_model::<B>(&device);
    let ids = input_ids::<B>(BATCH, SEQ, minilm_config(LAYERS).vocab_size, &device);
    let mask = padding_mask::<B>(BATCH, SEQ, &device);
    let mut group = c.benchmark_group("model_forward");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function(name, |bench| {
        bench.iter(|| {
            let out = model
                .forward(ids.clone(), mask.clone(), None)
                .expect("forward");
            sync::<B>(&device);
            black_box(out)
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    matmul::<Flex>(c, BACKENDS[0]);
    matmul::<NdArray>(c, BACKENDS[1]);
    layer_forward::<Flex>(c, BACKENDS[0]);
    layer_forward::<NdArray>(c, BACKENDS[1]);
    layer_lora_train::<Flex>(c, BACKENDS[0]);
    layer_lora_train::<NdArray>(c, BACKENDS[1]);
    model_forward::<Flex>(c, BACKENDS[0]);
    model_forward::<NdArray>(c, BACKENDS[1]);
}

/// Prints criterion's medians of this run as a Markdown table, with GFLOP/s where the work
/// is known (`2·n³` per matmul; the projection + attention products of a layer forward).
fn summary(since: SystemTime) {
    let dir = criterion_dir();
    let mut rows = Vec::new();
    for n in MATMUL_SIZES {
        rows.push((
            format!("matmul {n}"),
            format!("matmul/{{}}/{n}"),
            Some(matmul_flops(n)),
        ));
    }
    let tokens = format!("{BATCH}x{SEQ}");
    rows.push((
        format!("layer forward {tokens}"),
        "layer_forward/{}".into(),
        Some(layer_forward_flops(BATCH, SEQ)),
    ));
    rows.push((
        format!("layer LoRA fwd+bwd {tokens}"),
        "layer_lora_fwd_bwd/{}".into(),
        None,
    ));
    rows.push((
        format!("{LAYERS}-layer forward {tokens}"),
        "model_forward/{}".into(),
        Some(LAYERS as u64 * layer_forward_flops(BATCH, SEQ)),
    ));

    println!("\nSummary (criterion medians from {}):", dir.display());
    println!("| workload | flex | ndarray | ndarray / flex |");
    println!("| --- | --- | --- | --- |");
    for (label, pattern, flops) in rows {
        let medians = BACKENDS.map(|b| median_ns(&dir, &pattern.replace("{}", b), since));
        let cell = |m: Option<f64>| match (m, flops) {
            (Some(ns), Some(f)) => format!("{:.1} ms, {:.1} GFLOP/s", ns / 1e6, f as f64 / ns),
            (Some(ns), None) => format!("{:.1} ms", ns / 1e6),
            (None, _) => "not run".into(),
        };
        let ratio = match medians {
            [Some(f), Some(n)] => format!("{:.2}", n / f),
            _ => "-".into(),
        };
        println!(
            "| {label} | {} | {} | {ratio} |",
            cell(medians[0]),
            cell(medians[1])
        );
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default()
        .nresamples(10_000)
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    summary(since);
}
