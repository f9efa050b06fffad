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
use serde_json::{Number, Value};

use crate::target::{Format, Target};

mod binary;
mod lines;

use self::binary::{
    parquet_footer_bytes, parquet_footer_len, parquet_page_header_bytes, safetensors_header_bytes,
    safetensors_header_json, safetensors_header_len,
};
use self::lines::{
    cut_line, delete_line, duplicate_line, field_value, insert_token, json_line_value, swap_lines,
};

/// Inputs are cut to this size (duplicated chunks could otherwise grow them without bound).
pub const MAX_INPUT: usize = 1 << 20;

/// At most this many mutations are stacked on one seed.
const MAX_STACK: usize = 6;

/// Integers that break size arithmetic: zero, one, sign and width boundaries, and sizes whose
/// allocation must fail.
const INTERESTING: [u64; 18] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 53,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
];

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

// --- byte-level -------------------------------------------------------------------------------

fn flip_bits(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let len = data.len();
    flip_bits_in(data, 0..len, rng)
}

fn flip_bits_in(data: &mut [u8], range: std::ops::Range<usize>, rng: &mut ChaCha8Rng) -> bool {
    if range.is_empty() || range.end > data.len() {
        return false;
    }
    for _ in 0..rng.random_range(1..=8) {
        let i = rng.random_range(range.clone());
        data[i] ^= 1 << rng.random_range(0..8);
    }
    true
}

fn random_bytes(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let len = data.len();
    random_bytes_in(data, 0..len, rng)
}

fn random_bytes_in(data: &mut [u8], range: std::ops::Range<usize>, rng: &mut ChaCha8Rng) -> bool {
    if range.is_empty() || range.end > data.len() {
        return false;
    }
    let at = rng.random_range(range.clone());
    let n = rng.random_range(1..=16).min(range.end - at);
    rng.fill(&mut data[at..at + n]);
    true
}

fn interesting_int(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let len = data.len();
    interesting_int_in(data, 0..len, rng)
}

/// Writes an interesting integer 1, 2, 4 or 8 bytes wide, little or big endian, at a random
/// offset of `range` (or the value there plus or minus one).
fn interesting_int_in(
    data: &mut [u8],
    range: std::ops::Range<usize>,
    rng: &mut ChaCha8Rng,
) -> bool {
    let width = *[1usize, 2, 4, 8].choose(rng).unwrap_or(&4);
    if range.end > data.len() || range.len() < width {
        return false;
    }
    let at = rng.random_range(range.start..=range.end - width);
    let slot = &mut data[at..at + width];
    let big_endian = rng.random_bool(0.25);
    let value = if rng.random_bool(0.2) {
        let mut buf = [0u8; 8];
        if big_endian {
            buf[8 - width..].copy_from_slice(slot);
            buf.reverse();
        } else {
            buf[..width].copy_from_slice(slot);
        }
        let old = u64::from_le_bytes(buf);
        if rng.random_bool(0.5) {
            old.wrapping_add(1)
        } else {
            old.wrapping_sub(1)
        }
    } else {
        *INTERESTING.choose(rng).unwrap_or(&0)
    };
    let bytes = value.to_le_bytes();
    slot.copy_from_slice(&bytes[..width]);
    if big_endian {
        slot.reverse();
    }
    true
}

fn truncate(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    if data.is_empty() {
        return false;
    }
    let len = rng.random_range(0..data.len());
    data.truncate(len);
    true
}

/// The head of this input up to a random point, then another seed's tail from a random point.
fn splice(data: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(other) = seeds.choose(rng) else {
        return false;
    };
    if other.is_empty() {
        return false;
    }
    let cut = rng.random_range(0..=data.len());
    let from = rng.random_range(0..other.len());
    data.truncate(cut);
    data.extend_from_slice(&other[from..]);
    true
}

fn chunk(len: usize, rng: &mut ChaCha8Rng) -> Option<std::ops::Range<usize>> {
    if len == 0 {
        return None;
    }
    let start = rng.random_range(0..len);
    let max = (len - start).min(4096);
    // Mostly short chunks: a few bytes of a length field or a JSON token.
    let n = if rng.random_bool(0.7) {
        rng.random_range(1..=max.min(16))
    } else {
        rng.random_range(1..=max)
    };
    Some(start..start + n)
}

fn duplicate_chunk(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(range) = chunk(data.len(), rng) else {
        return false;
    };
    let copy = data[range].to_vec();
    let at = rng.random_range(0..=data.len());
    data.splice(at..at, copy);
    true
}

fn remove_chunk(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(range) = chunk(data.len(), rng) else {
        return false;
    };
    data.drain(range);
    true
}

fn insert_random(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let at = rng.random_range(0..=data.len());
    let mut bytes = vec![0u8; rng.random_range(1..=16)];
    rng.fill(&mut bytes[..]);
    data.splice(at..at, bytes);
    true
}

// --- JSON -------------------------------------------------------------------------------------

fn json_value(data: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
        return false;
    };
    let donor = seeds
        .choose(rng)
        .and_then(|s| serde_json::from_slice::<Value>(s).ok());
    mutate_json(&mut value, donor.as_ref(), rng);
    match serde_json::to_vec(&value) {
        Ok(bytes) => {
            *data = bytes;
            true
        }
        Err(_) => false,
    }
}

/// JSON pointer token escaping (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The JSON pointer of every node of `value` (the root is `""`), in document order.
fn pointers(value: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                out.push(at.clone());
                for (k, child) in map {
                    walk(child, format!("{at}/{}", escape(k)), out);
                }
            }
            Value::Array(items) => {
                out.push(at.clone());
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at),
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn number(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// A number that breaks size arithmetic, or, for a number, one of its neighbours.
fn interesting_number(old: Option<&Value>, rng: &mut ChaCha8Rng) -> Value {
    if let Some(n) = old.and_then(Value::as_u64)
        && rng.random_bool(0.3)
    {
        let near = [
            n.wrapping_add(1),
            n.wrapping_sub(1),
            n.wrapping_mul(2),
            n / 2,
            n.wrapping_mul(1000),
        ];
        return Value::from(*near.choose(rng).unwrap_or(&n));
    }
    match rng.random_range(0..12) {
        0 => Value::from(-1),
        1 => Value::from(i64::MIN),
        2 => number(1e308),
        3 => number(-1e308),
        4 => number(0.5),
        5 => number(1e-308),
        6 => Value::from(-2_147_483_648i64),
        _ => Value::from(*INTERESTING.choose(rng).unwrap_or(&0)),
    }
}

/// A value of a random type (for "change type").
fn random_value(old: &Value, rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 => Value::Bool(rng.random_bool(0.5)),
        2 => Value::from(""),
        3 => Value::from("x".repeat(rng.random_range(1..=300))),
        4 => Value::Array(Vec::new()),
        5 => Value::Object(serde_json::Map::new()),
        6 => Value::Array(vec![old.clone(), old.clone()]),
        7 => {
            let mut map = serde_json::Map::new();
            map.insert("value".into(), old.clone());
            Value::Object(map)
        }
        8 => Value::from(old.to_string()),
        _ => interesting_number(Some(old), rng),
    }
}

/// Removes the node at `pointer` from its parent (false for the root or a missing node).
fn remove(root: &mut Value, pointer: &str) -> bool {
    let Some((parent, token)) = pointer.rsplit_once('/') else {
        return false;
    };
    match root.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&unescape(token)).is_some(),
        Some(Value::Array(items)) => match token.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// One structural mutation of `root`; `donor` (another seed's document) supplies values of
/// the right shape from elsewhere.
pub fn mutate_json(root: &mut Value, donor: Option<&Value>, rng: &mut ChaCha8Rng) {
    let paths = pointers(root);
    let Some(at) = paths.choose(rng).cloned() else {
        return;
    };
    match rng.random_range(0..16) {
        // Numbers: most of the sizes and ids loaders trust.
        0..=4 => {
            let numbers: Vec<&String> = paths
                .iter()
                .filter(|p| root.pointer(p).is_some_and(Value::is_number))
                .collect();
            let at = numbers.choose(rng).map_or(at.clone(), |p| (*p).clone());
            let new = interesting_number(root.pointer(&at), rng);
            if let Some(slot) = root.pointer_mut(&at) {
                *slot = new;
            }
        }
        // Swap two values (skipped when one holds the other).
        5 | 6 => {
            let Some(other) = paths.choose(rng).cloned() else {
                return;
            };
            if at.starts_with(&other) || other.starts_with(&at) {
                return;
            }
            let (Some(a), Some(b)) = (root.pointer(&at).cloned(), root.pointer(&other).cloned())
            else {
                return;
            };
            if let Some(slot) = root.pointer_mut(&at) {
                *slot = b;
            }
            if let Some(slot) = root.pointer_mut(&other) {
                *slot = a;
            }
        }
        // Another type.
        7 | 8 => {
            if let Some(slot) = root.pointer_mut(&at) {
                *slot = random_value(slot, rng);
            }
        }
        // Drop a key or an element.
        9 | 10 => {
            remove(root, &at);
        }
        // Duplicate array elements (one, or many: a longer list than anything expects).
        11 => {
            let arrays: Vec<&String> = paths
                .iter()
                .filter(|p| {
                    root.pointer(p)
                        .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                })
                .collect();
            let Some(at) = arrays.choose(rng).map(|p| (*p).clone()) else {
                return;
            };
            let times = if rng.random_bool(0.8) {
                1
            } else {
                rng.random_range(2..=64)
            };
            if let Some(Value::Array(items)) = root.pointer_mut(&at) {
                let i = rng.random_range(0..items.len());
                let copy = items[i].clone();
                for _ in 0..times {
                    items.insert(i, copy.clone());
                }
            }
        }
        // A value from another seed.
        12 | 13 => {
            let Some(donor) = donor else { return };
            let Some(from) = pointers(donor).choose(rng).cloned() else {
                return;
            };
            let value = donor.pointer(&from).cloned().unwrap_or(Value::Null);
            if let Some(slot) = root.pointer_mut(&at) {
                *slot = value;
            }
        }
        // Rename a key (to another key of the document, so it may collide).
        14 => {
            let Some((parent, token)) = at.rsplit_once('/') else {
                return;
            };
            let new_key = paths
                .choose(rng)
                .and_then(|p| p.rsplit_once('/'))
                .map(|(_, t)| unescape(t))
                .unwrap_or_default();
            if let Some(Value::Object(map)) = root.pointer_mut(parent)
                && let Some(v) = map.remove(&unescape(token))
            {
                map.insert(new_key, v);
            }
        }
        // JSON inside a string (a checkpoint's `train_state`): mutated as JSON.
        _ => {
            let nested: Vec<(String, Value)> = paths
                .iter()
                .filter_map(|p| {
                    let s = root.pointer(p)?.as_str()?;
                    let v: Value = serde_json::from_str(s).ok()?;
                    (v.is_object() || v.is_array()).then(|| (p.clone(), v))
                })
                .collect();
            let Some((at, mut inner)) = nested.choose(rng).cloned() else {
                if let Some(slot) = root.pointer_mut(&at) {
                    *slot = interesting_number(Some(slot), rng);
                }
                return;
            };
            mutate_json(&mut inner, None, rng);
            if let Some(slot) = root.pointer_mut(&at) {
                *slot = Value::from(inner.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::binary::{parquet_footer, safetensors_header};
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
