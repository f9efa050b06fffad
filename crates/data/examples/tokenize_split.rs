//! Times reading and tokenising a whole IMDb split (the throughput target: the 25k train
//! split in under 15 s on a 2-core machine). Run with `--release`:
//! `cargo run --release -p imdb-lora-data --example tokenize_split -- [parquet] [tokenizer.json] [max_len]`
//! Defaults: the shared train split, all-MiniLM-L6-v2's tokenizer, 256.
// An example reports to the terminal; the library itself only uses `tracing`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use imdb_lora_data::table::{TableSpec, read_file};
use imdb_lora_data::{LabelCounts, TextTokenizer};
use imdb_lora_testkit::shared::{imdb_file, minilm_dir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let parquet = match args.next() {
        Some(p) => PathBuf::from(p),
        None => imdb_file("plain_text/train-00000-of-00001.parquet")?,
    };
    let tokenizer = match args.next() {
        Some(p) => PathBuf::from(p),
        None => minilm_dir()?.join("tokenizer.json"),
    };
    let max_len = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(imdb_lora_data::DEFAULT_MAX_LEN);

    let t0 = Instant::now();
    let tok = TextTokenizer::from_tokenizer_json(&tokenizer, max_len)?;
    let load = t0.elapsed();

    let t1 = Instant::now();
    let (reviews, _classes) = read_file(&parquet, &TableSpec::default())?;
    let read = t1.elapsed();
    drop(reviews);

    let t2 = Instant::now();
    let (reviews, _classes) = read_file(&parquet, &TableSpec::default())?;
    let (examples, stats) = tok.encode_reviews(&reviews, "the split")?;
    let total = t2.elapsed();
    let counts = LabelCounts::of(reviews.iter().map(|r| &r.label));

    println!("file:            {}", parquet.display());
    println!(
        "threads:         {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("tokenizer load:  {:.3} s", load.as_secs_f64());
    println!("read only:       {:.3} s", read.as_secs_f64());
    println!(
        "read+tokenise:   {:.3} s  ({} reviews, {} tokens, mean {:.1}, {} truncated at {max_len}; tokenising {:.3} s)",
        total.as_secs_f64(),
        examples.len(),
        stats.tokens,
        stats.mean_len(),
        stats.truncated,
        stats.seconds
    );
    println!("labels:          {}", counts);
    Ok(())
}
