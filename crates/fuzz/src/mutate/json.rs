//! JSON mutations: a document parsed and changed as values (numbers set to 2^40, -1, 0, 1e308 or a
//! neighbour of their value; values swapped between keys, changed to another type, taken from
//! another seed; keys dropped or renamed; array elements duplicated; JSON held in a string, like
//! a checkpoint's `train_state`, mutated in place).

// Every mutation has the `Op` signature, `&mut Vec<u8>`: some grow or shrink the input.
#![allow(clippy::ptr_arg)]

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Number, Value};

use super::bytes::INTERESTING;

pub(super) fn json_value(data: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
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
pub(super) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub(super) fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The JSON pointer of every node of `value` (the root is `""`), in document order.
pub(super) fn pointers(value: &Value) -> Vec<String> {
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

pub(super) fn number(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// A number that breaks size arithmetic, or, for a number, one of its neighbours.
pub(super) fn interesting_number(old: Option<&Value>, rng: &mut ChaCha8Rng) -> Value {
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
pub(super) fn random_value(old: &Value, rng: &mut ChaCha8Rng) -> Value {
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
pub(super) fn remove(root: &mut Value, pointer: &str) -> bool {
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
