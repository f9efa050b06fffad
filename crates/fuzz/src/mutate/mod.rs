//! The mutations, and [`generate`]: input `index` of a run is a seed file with one to six
//! mutations stacked on it, all drawn from a ChaCha8 stream keyed by `(target, seed, index)`
//! alone, so any input can be rebuilt without replaying the run that found it.
//!
//! Byte-level mutations work on any file: bit flips, random bytes, "interesting" integers
//! (0, ±1, 2^31, 2^32, 2^40, 2^63, …, 1 to 8 bytes wide, either byte order), truncation,
//! splices of two seeds, duplicated, removed and inserted chunks. Format-aware ones target
//! what loaders trust: JSON documents are parsed and changed as values (numbers set to 2^40,
//! -1, 0, 1e308 or a neighbour of their value; values swapped between keys, changed to another
//! type, taken from another seed; keys dropped or renamed; array elements duplicated; JSON held
//! in a string, like a checkpoint's `train_state`, mutated in place); a safetensors file's
//! 8-byte header length is set to huge or off-by-one values and its JSON header is mutated as
//! JSON (shapes, offsets, dtypes); a parquet file's footer length is forged and its Thrift
//! footer and first page header get byte mutations. Line-based text (CSV, TSV, JSON Lines) gets
//! lines duplicated, deleted, swapped and cut short, quotes, delimiters, CR, LF, NUL, a BOM or
//! broken UTF-8 inserted, and fields replaced by labels and texts that readers must refuse or
//! take (empty, huge integers, floats, "nan", unbalanced quotes, a long text); each line of a
//! JSON Lines file is also mutated as JSON.

// Every mutation has the `Op` signature, `&mut Vec<u8>`: some grow or shrink the input.
#![allow(clippy::ptr_arg)]

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::target::{Format, Target};

mod binary;
mod bytes;
mod json;
mod lines;

use self::binary::{
    parquet_footer_bytes, parquet_footer_len, parquet_page_header_bytes, safetensors_header_bytes,
    safetensors_header_json, safetensors_header_len,
};
use self::bytes::{
    duplicate_chunk, flip_bits, insert_random, interesting_int, random_bytes, remove_chunk, splice,
    truncate,
};
use self::json::json_value;
pub use self::json::mutate_json;
use self::lines::{
    cut_line, delete_line, duplicate_line, field_value, insert_token, json_line_value, swap_lines,
};

/// Inputs are cut to this size (duplicated chunks could otherwise grow them without bound).
pub const MAX_INPUT: usize = 1 << 20;

/// At most this many mutations are stacked on one seed.
const MAX_STACK: usize = 6;

/// The random stream of input `index` of a run of `target` with `seed`: a ChaCha8 key built
/// from the three (never from a previous input), so every input is reproducible alone.
pub fn rng_for(target: Target, seed: u64, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..24].copy_from_slice(&fnv1a(target.name().as_bytes()).to_le_bytes());
    key[24..].copy_from_slice(b"imdbfuzz");
    ChaCha8Rng::from_seed(key)
}

/// FNV-1a: a stable hash of the target's name (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Input `index` of a run of `target` with `seed`, from `seeds` (the target's seed files).
pub fn generate(target: Target, seeds: &[Vec<u8>], seed: u64, index: u64) -> Vec<u8> {
    generate_described(target, seeds, seed, index).0
}

/// As [`generate`], with the names of the mutations applied, in order.
pub fn generate_described(
    target: Target,
    seeds: &[Vec<u8>],
    seed: u64,
    index: u64,
) -> (Vec<u8>, Vec<&'static str>) {
    if target.is_selftest() {
        // Every third input is the one the self-test targets crash on.
        return (vec![(index % 3) as u8], vec!["selftest"]);
    }
    let mut rng = rng_for(target, seed, index);
    let Some(base) = seeds.choose(&mut rng) else {
        return (Vec::new(), Vec::new());
    };
    let mut data = base.clone();
    let mut count = 1;
    while count < MAX_STACK && rng.random_bool(0.4) {
        count += 1;
    }
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        names.push(mutate_once(&mut data, target.format(), seeds, &mut rng));
        data.truncate(MAX_INPUT);
    }
    (data, names)
}

type Op = fn(&mut Vec<u8>, &[Vec<u8>], &mut ChaCha8Rng) -> bool;

const BYTE_OPS: [(&str, u32, Op); 8] = [
    ("flip bits", 2, flip_bits),
    ("random bytes", 1, random_bytes),
    ("interesting integer", 2, interesting_int),
    ("truncate", 1, truncate),
    ("splice seeds", 1, splice),
    ("duplicate chunk", 1, duplicate_chunk),
    ("remove chunk", 1, remove_chunk),
    ("insert random bytes", 1, insert_random),
];

const JSON_OPS: [(&str, u32, Op); 1] = [("json value", 10, json_value)];

const SAFETENSORS_OPS: [(&str, u32, Op); 3] = [
    ("safetensors header length", 2, safetensors_header_len),
    ("safetensors header json", 8, safetensors_header_json),
    ("safetensors header bytes", 2, safetensors_header_bytes),
];

const PARQUET_OPS: [(&str, u32, Op); 3] = [
    ("parquet footer length", 2, parquet_footer_len),
    ("parquet footer bytes", 6, parquet_footer_bytes),
    ("parquet page header bytes", 2, parquet_page_header_bytes),
];

const LINE_OPS: [(&str, u32, Op); 6] = [
    ("duplicate line", 2, duplicate_line),
    ("delete line", 2, delete_line),
    ("swap lines", 1, swap_lines),
    ("insert token", 3, insert_token),
    ("field value", 3, field_value),
    ("cut line short", 1, cut_line),
];

const JSON_LINES_OPS: [(&str, u32, Op); 7] = [
    ("duplicate line", 2, duplicate_line),
    ("delete line", 2, delete_line),
    ("swap lines", 1, swap_lines),
    ("insert token", 2, insert_token),
    ("field value", 1, field_value),
    ("cut line short", 1, cut_line),
    ("json line value", 8, json_line_value),
];

/// Applies one mutation chosen by weight among the byte-level ones and `format`'s own; one
/// that does not apply (a JSON mutation on bytes that no longer parse) falls back to a bit
/// flip.
fn mutate_once(
    data: &mut Vec<u8>,
    format: Format,
    seeds: &[Vec<u8>],
    rng: &mut ChaCha8Rng,
) -> &'static str {
    let special: &[(&str, u32, Op)] = match format {
        Format::Json => &JSON_OPS,
        Format::Safetensors => &SAFETENSORS_OPS,
        Format::Parquet => &PARQUET_OPS,
        Format::Delimited => &LINE_OPS,
        Format::JsonLines => &JSON_LINES_OPS,
        Format::Raw => &[],
    };
    let total: u32 = BYTE_OPS.iter().chain(special).map(|(_, w, _)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (name, weight, op) in BYTE_OPS.iter().chain(special) {
        if pick < *weight {
            if op(data, seeds, rng) {
                return name;
            }
            flip_bits(data, seeds, rng);
            return "flip bits";
        }
        pick -= weight;
    }
    "none"
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::binary::{parquet_footer, safetensors_header};
    use super::bytes::interesting_int_in;
    use super::lines::{content, lines};
    use super::*;

    fn json_seed() -> Vec<Vec<u8>> {
        vec![br#"{"a": 1, "b": [1, 2, 3], "c": {"d": "x", "e": "{\"f\": 2}"}}"#.to_vec()]
    }

    #[test]
    fn inputs_are_a_function_of_target_seed_and_index() {
        let seeds = json_seed();
        let a = generate(Target::Config, &seeds, 7, 12345);
        // Generating other inputs in between changes nothing.
        for i in 0..50 {
            generate(Target::Config, &seeds, 7, i);
        }
        assert_eq!(generate(Target::Config, &seeds, 7, 12345), a);
        let others = [
            generate(Target::Config, &seeds, 8, 12345),
            generate(Target::Metrics, &seeds, 7, 12345),
            generate(Target::Config, &seeds, 7, 12346),
        ];
        assert!(
            others.iter().filter(|o| **o == a).count() < 3,
            "seed, target and index all feed the stream"
        );
    }

    #[test]
    fn most_inputs_differ_from_their_seed_and_from_each_other() {
        let seeds = json_seed();
        let inputs: Vec<Vec<u8>> = (0..200)
            .map(|i| generate(Target::Config, &seeds, 1, i))
            .collect();
        let changed = inputs.iter().filter(|i| **i != seeds[0]).count();
        assert!(changed > 180, "{changed} of 200 differ from the seed");
        let distinct: std::collections::BTreeSet<&Vec<u8>> = inputs.iter().collect();
        assert!(distinct.len() > 150, "{} distinct of 200", distinct.len());
    }

    #[test]
    fn json_mutations_keep_json_and_reach_nested_json() {
        let seeds = json_seed();
        let mut rng = rng_for(Target::Config, 0, 0);
        let mut parsed = 0;
        let mut nested_changed = false;
        for _ in 0..300 {
            let mut data = seeds[0].clone();
            assert!(json_value(&mut data, &seeds, &mut rng));
            if let Ok(v) = serde_json::from_slice::<Value>(&data) {
                parsed += 1;
                let e = v.pointer("/c/e").and_then(Value::as_str);
                if e.is_some_and(|e| e != "{\"f\": 2}" && e.starts_with('{')) {
                    nested_changed = true;
                }
            }
        }
        assert_eq!(parsed, 300, "a JSON mutation always writes JSON");
        assert!(nested_changed, "JSON inside a string gets mutated as JSON");
    }

    #[test]
    fn safetensors_header_mutation_keeps_the_data_and_a_consistent_length() {
        let header = br#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut rng = rng_for(Target::Safetensors, 0, 0);
        for _ in 0..100 {
            let mut data = file.clone();
            assert!(safetensors_header_json(
                &mut data,
                &[file.clone()],
                &mut rng
            ));
            let (n, json) = safetensors_header(&data).unwrap();
            assert!(json.is_some(), "header is still JSON");
            assert_eq!(&data[8 + n..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        }
    }

    #[test]
    fn parquet_footer_length_is_forged_in_place() {
        let mut file = b"PAR1xxxxFOOTER".to_vec();
        file.extend_from_slice(&6u32.to_le_bytes());
        file.extend_from_slice(b"PAR1");
        assert_eq!(parquet_footer(&file), Some(8..14));
        let mut rng = rng_for(Target::Parquet, 0, 0);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let mut data = file.clone();
            assert!(parquet_footer_len(&mut data, &[], &mut rng));
            assert_eq!(data.len(), file.len());
            seen.insert(u32::from_le_bytes(data[14..18].try_into().unwrap()));
        }
        assert!(seen.contains(&u32::MAX) && seen.contains(&7), "{seen:?}");
    }

    #[test]
    fn line_mutations_keep_the_other_lines() {
        let file = b"text,label\n\"a, b\",1\nc,0\n".to_vec();
        let mut rng = rng_for(Target::Csv, 0, 0);
        let ops: [Op; 6] = [
            duplicate_line,
            delete_line,
            swap_lines,
            insert_token,
            field_value,
            cut_line,
        ];
        for op in ops {
            for _ in 0..50 {
                let mut data = file.clone();
                assert!(op(&mut data, &[], &mut rng));
                // Every mutation leaves at least one of the three lines as it was.
                let kept = ["text,label\n", "\"a, b\",1\n", "c,0\n"]
                    .iter()
                    .filter(|l| data.windows(l.len()).any(|w| w == l.as_bytes()))
                    .count();
                assert!(kept >= 1, "{:?}", String::from_utf8_lossy(&data));
            }
        }
        // A last line without a newline keeps lines apart when it moves up.
        let mut data = b"a\nb".to_vec();
        assert!(swap_lines(&mut data, &[], &mut rng));
        assert_eq!(data, b"b\na");
    }

    #[test]
    fn json_lines_mutations_change_one_line_as_json() {
        let file = b"{\"text\": \"a\", \"label\": 1}\r\n{\"text\": \"b\", \"label\": 0}\n".to_vec();
        let mut rng = rng_for(Target::JsonLines, 0, 0);
        for _ in 0..100 {
            let mut data = file.clone();
            assert!(json_line_value(&mut data, &[], &mut rng));
            let all = lines(&data);
            assert_eq!(all.len(), 2, "{:?}", String::from_utf8_lossy(&data));
            assert!(data[all[0].clone()].ends_with(b"\r\n"));
            for l in all {
                let body = content(&data, &l);
                serde_json::from_slice::<Value>(&data[body]).unwrap();
            }
        }
    }

    #[test]
    fn interesting_integers_land_inside_the_range() {
        let mut rng = rng_for(Target::Parquet, 0, 0);
        for _ in 0..200 {
            let mut data = vec![0u8; 32];
            assert!(interesting_int_in(&mut data, 10..20, &mut rng));
            assert!(data[..10].iter().chain(&data[20..]).all(|&b| b == 0));
        }
    }
}
