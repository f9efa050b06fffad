//! Times reading and tokenising a whole IMDb split (the throughput target: the 25k train
//! split in under 15 s on a 2-core machine). Run with `--release`:
//! `cargo run --release -p imdb-lora-data --example tokenize_split -- [parquet] [tokenizer.json] [max_len]`
//! Defaults: the shared train split, all-MiniLM-L6-v2's tokenizer, 256.
// An example reports to the terminal; the library itself only uses `tracing`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use imdb_lora_data::{Split, TextTokenizer, read_and_tokenize, read_reviews};
use imdb_lora_testkit::shared::{imdb_file, minilm_dir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let parquet = match args.next() {
        Some(p) => PathBuf::from(p),
        None => imdb_file(Split::Train.file())?,
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
    let reviews = read_reviews(&parquet)?;
    let read = t1.elapsed();
    drop(reviews);

    let t2 = Instant::now();
    let split = read_and_tokenize(&parquet, &tok)?;
    let total = t2.elapsed();

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
        split.examples.len(),
        split.stats.tokens,
        split.stats.mean_len(),
        split.stats.truncated,
        split.stats.seconds
    );
    println!("labels:          {}", split.counts);
    Ok(())
}
