//! Byte-level mutations, for any file: bit flips, random bytes, "interesting" integers (0, ±1,
//! 2^31, 2^32, 2^40, 2^63, …, 1 to 8 bytes wide, either byte order), truncation, splices of two
//! seeds, duplicated, removed and inserted chunks; and the in-range helpers the format-aware
//! mutations reuse on the bytes they target.

// Every mutation has the `Op` signature, `&mut Vec<u8>`: some grow or shrink the input.
#![allow(clippy::ptr_arg)]

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// Integers that break size arithmetic: zero, one, sign and width boundaries, and sizes whose
/// allocation must fail.
pub(super) const INTERESTING: [u64; 18] = [
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

pub(super) fn flip_bits(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let len = data.len();
    flip_bits_in(data, 0..len, rng)
}

pub(super) fn flip_bits_in(
    data: &mut [u8],
    range: std::ops::Range<usize>,
    rng: &mut ChaCha8Rng,
) -> bool {
    if range.is_empty() || range.end > data.len() {
        return false;
    }
    for _ in 0..rng.random_range(1..=8) {
        let i = rng.random_range(range.clone());
        data[i] ^= 1 << rng.random_range(0..8);
    }
    true
}

pub(super) fn random_bytes(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let len = data.len();
    random_bytes_in(data, 0..len, rng)
}

pub(super) fn random_bytes_in(
    data: &mut [u8],
    range: std::ops::Range<usize>,
    rng: &mut ChaCha8Rng,
) -> bool {
    if range.is_empty() || range.end > data.len() {
        return false;
    }
    let at = rng.random_range(range.clone());
    let n = rng.random_range(1..=16).min(range.end - at);
    rng.fill(&mut data[at..at + n]);
    true
}

pub(super) fn interesting_int(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let len = data.len();
    interesting_int_in(data, 0..len, rng)
}

/// Writes an interesting integer 1, 2, 4 or 8 bytes wide, little or big endian, at a random
/// offset of `range` (or the value there plus or minus one).
pub(super) fn interesting_int_in(
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

pub(super) fn truncate(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    if data.is_empty() {
        return false;
    }
    let len = rng.random_range(0..data.len());
    data.truncate(len);
    true
}

/// The head of this input up to a random point, then another seed's tail from a random point.
pub(super) fn splice(data: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
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

pub(super) fn chunk(len: usize, rng: &mut ChaCha8Rng) -> Option<std::ops::Range<usize>> {
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

pub(super) fn duplicate_chunk(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(range) = chunk(data.len(), rng) else {
        return false;
    };
    let copy = data[range].to_vec();
    let at = rng.random_range(0..=data.len());
    data.splice(at..at, copy);
    true
}

pub(super) fn remove_chunk(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(range) = chunk(data.len(), rng) else {
        return false;
    };
    data.drain(range);
    true
}

pub(super) fn insert_random(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let at = rng.random_range(0..=data.len());
    let mut bytes = vec![0u8; rng.random_range(1..=16)];
    rng.fill(&mut bytes[..]);
    data.splice(at..at, bytes);
    true
}
