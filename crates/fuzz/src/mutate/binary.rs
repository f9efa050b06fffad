//! Mutations of the binary formats' structure: a safetensors file's header length and JSON
//! header, a parquet file's footer length, Thrift footer and first page header.

// Every mutation has the `Op` signature, `&mut Vec<u8>`: some grow or shrink the input.
#![allow(clippy::ptr_arg)]

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::bytes::{INTERESTING, flip_bits_in, interesting_int_in, random_bytes_in};
use super::json::mutate_json;

/// The header length a safetensors file declares, and its parsed JSON header when the
/// declared range holds JSON.
pub(super) fn safetensors_header(data: &[u8]) -> Option<(usize, Option<Value>)> {
    let len_bytes: [u8; 8] = data.get(..8)?.try_into().ok()?;
    let n = usize::try_from(u64::from_le_bytes(len_bytes)).ok()?;
    let end = n.checked_add(8)?;
    let json = data
        .get(8..end)
        .and_then(|h| serde_json::from_slice::<Value>(h).ok());
    Some((n, json))
}

pub(super) fn safetensors_header_len(
    data: &mut Vec<u8>,
    _: &[Vec<u8>],
    rng: &mut ChaCha8Rng,
) -> bool {
    if data.len() < 8 {
        return false;
    }
    let n = u64::from_le_bytes([
        data[0], data[1], data[2], data[3], data[4], data[5], data[6], data[7],
    ]);
    let file = data.len() as u64;
    let choices = [
        n.wrapping_add(1),
        n.wrapping_sub(1),
        file - 8,
        file - 7,
        file,
        100_000_000,
        100_000_001,
    ];
    let value = if rng.random_bool(0.5) {
        *choices.choose(rng).unwrap_or(&n)
    } else {
        *INTERESTING.choose(rng).unwrap_or(&n)
    };
    data[..8].copy_from_slice(&value.to_le_bytes());
    true
}

/// The JSON header mutated as JSON and written back with its new length; the data section is
/// kept. A shorter header is padded with spaces to the old length (as safetensors pads), so
/// offsets into the data still mean what they meant.
pub(super) fn safetensors_header_json(
    data: &mut Vec<u8>,
    seeds: &[Vec<u8>],
    rng: &mut ChaCha8Rng,
) -> bool {
    let Some((n, Some(mut header))) = safetensors_header(data) else {
        return false;
    };
    let donor = seeds
        .choose(rng)
        .and_then(|s| safetensors_header(s))
        .and_then(|(_, h)| h);
    mutate_json(&mut header, donor.as_ref(), rng);
    let Ok(mut bytes) = serde_json::to_vec(&header) else {
        return false;
    };
    if bytes.len() < n {
        bytes.resize(n, b' ');
    }
    let mut out = Vec::with_capacity(8 + bytes.len() + data.len().saturating_sub(8 + n));
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&bytes);
    out.extend_from_slice(data.get(8 + n..).unwrap_or_default());
    *data = out;
    true
}

/// Byte mutations confined to the length field and the JSON header.
pub(super) fn safetensors_header_bytes(
    data: &mut Vec<u8>,
    _: &[Vec<u8>],
    rng: &mut ChaCha8Rng,
) -> bool {
    let Some((n, _)) = safetensors_header(data) else {
        return false;
    };
    let end = n.saturating_add(8).min(data.len());
    if rng.random_bool(0.5) {
        flip_bits_in(data, 0..end, rng)
    } else {
        random_bytes_in(data, 8.min(end)..end, rng)
    }
}

// --- parquet ----------------------------------------------------------------------------------

/// The footer's byte range (Thrift `FileMetaData`), when the file ends as parquet does.
pub(super) fn parquet_footer(data: &[u8]) -> Option<std::ops::Range<usize>> {
    let len = data.len();
    if len < 12 || &data[len - 4..] != b"PAR1" {
        return None;
    }
    let footer_len = u32::from_le_bytes(data[len - 8..len - 4].try_into().ok()?) as usize;
    let start = (len - 8).checked_sub(footer_len)?;
    Some(start..len - 8)
}

pub(super) fn parquet_footer_len(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let len = data.len();
    if len < 12 {
        return false;
    }
    let old = u32::from_le_bytes([data[len - 8], data[len - 7], data[len - 6], data[len - 5]]);
    let file = u32::try_from(len).unwrap_or(u32::MAX);
    let choices = [
        0,
        1,
        old.wrapping_add(1),
        old.wrapping_sub(1),
        file - 8,
        file - 7,
        file,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
        1 << 24,
    ];
    let value = *choices.choose(rng).unwrap_or(&old);
    data[len - 8..len - 4].copy_from_slice(&value.to_le_bytes());
    true
}

pub(super) fn parquet_footer_bytes(
    data: &mut Vec<u8>,
    _: &[Vec<u8>],
    rng: &mut ChaCha8Rng,
) -> bool {
    let Some(footer) = parquet_footer(data) else {
        return false;
    };
    match rng.random_range(0..3) {
        0 => flip_bits_in(data, footer, rng),
        1 => random_bytes_in(data, footer, rng),
        _ => interesting_int_in(data, footer, rng),
    }
}

/// Byte mutations in the first page header (sizes and counts the reader allocates from).
pub(super) fn parquet_page_header_bytes(
    data: &mut Vec<u8>,
    _: &[Vec<u8>],
    rng: &mut ChaCha8Rng,
) -> bool {
    let end = data.len().min(4 + 48);
    if end <= 4 {
        return false;
    }
    if rng.random_bool(0.5) {
        flip_bits_in(data, 4..end, rng)
    } else {
        interesting_int_in(data, 4..end, rng)
    }
}
