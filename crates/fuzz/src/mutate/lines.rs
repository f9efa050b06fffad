//! Mutations of line-based text (CSV, TSV, JSON Lines): lines duplicated, deleted, swapped and
//! cut short; quotes, delimiters, CR, LF, NUL, a BOM or broken UTF-8 inserted; fields replaced
//! by values readers must refuse or take; a JSON Lines line mutated as JSON.

// Every mutation has the `Op` signature, `&mut Vec<u8>`: some grow or shrink the input.
#![allow(clippy::ptr_arg)]

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::json::mutate_json;

/// Each line's byte range, its `\n` included (a last line without one too).
pub(super) fn lines(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < data.len() {
        out.push(start..data.len());
    }
    out
}

/// A line's range without its `\r\n` or `\n`.
pub(super) fn content(data: &[u8], line: &std::ops::Range<usize>) -> std::ops::Range<usize> {
    let mut end = line.end;
    if end > line.start && data[end - 1] == b'\n' {
        end -= 1;
    }
    if end > line.start && data[end - 1] == b'\r' {
        end -= 1;
    }
    line.start..end
}

/// A line repeated once (a duplicate row) or up to 64 times (more rows than anything expects).
pub(super) fn duplicate_line(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(line) = lines(data).choose(rng).cloned() else {
        return false;
    };
    let mut copy = data[line.clone()].to_vec();
    if !copy.ends_with(b"\n") {
        copy.push(b'\n');
    }
    let times = if rng.random_bool(0.8) {
        1
    } else {
        rng.random_range(2..=64)
    };
    let at = *[line.start, line.end].choose(rng).unwrap_or(&line.start);
    data.splice(at..at, copy.repeat(times));
    true
}

/// A line removed (the header, the only data row, the one a quote opened on).
pub(super) fn delete_line(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(line) = lines(data).choose(rng).cloned() else {
        return false;
    };
    data.drain(line);
    true
}

/// Two lines exchanged (a header below the data, rows with other labels first).
pub(super) fn swap_lines(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let all = lines(data);
    if all.len() < 2 {
        return false;
    }
    let a = rng.random_range(0..all.len());
    let b = (a + rng.random_range(1..all.len())) % all.len();
    let (a, b) = (all[a.min(b)].clone(), all[a.max(b)].clone());
    let mut first = data[a.clone()].to_vec();
    let mut second = data[b.clone()].to_vec();
    // Keep every line terminated where it lands (the last line may have had no newline).
    if !second.ends_with(b"\n") {
        second.push(b'\n');
        if first.ends_with(b"\n") {
            first.pop();
        }
    }
    let mut out = Vec::with_capacity(data.len() + 1);
    out.extend_from_slice(&data[..a.start]);
    out.extend_from_slice(&second);
    out.extend_from_slice(&data[a.end..b.start]);
    out.extend_from_slice(&first);
    out.extend_from_slice(&data[b.end..]);
    *data = out;
    true
}

/// What breaks a line-based reader when it appears in the wrong place: quotes, delimiters,
/// line ends, NUL, a byte-order mark, broken UTF-8, JSON punctuation and escapes.
const TOKENS: [&[u8]; 24] = [
    b"\"",
    b"\"\"",
    b"\"\"\"",
    b",",
    b",,",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\0",
    b"\\",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"{",
    b"}",
    b"[",
    b":",
    b"\\u",
    b"\\ud800",
    b"\"\n\"",
    b",\"",
];

/// A token inserted at a random byte or beside a quote, delimiter or line end (where the
/// reader's state changes).
pub(super) fn insert_token(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(token) = TOKENS.choose(rng) else {
        return false;
    };
    let special: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'"' | b',' | b'\t' | b'\n' | b':' | b'{'))
        .map(|(i, _)| i)
        .collect();
    let at = match special.choose(rng) {
        Some(&i) if rng.random_bool(0.6) => i + usize::from(rng.random_bool(0.5)),
        _ => rng.random_range(0..=data.len()),
    };
    data.splice(at..at, token.iter().copied());
    true
}

/// Values a field may be replaced with: labels that are not class ids (empty, negative, too
/// large, floats, names that look like numbers), quoting gone wrong, a long text.
const FIELD_VALUES: [&str; 22] = [
    "",
    " ",
    "0",
    "1",
    "-1",
    "2",
    "5",
    "255",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1.5",
    "1e3",
    "nan",
    "inf",
    "\"\"",
    "\"",
    "\"a\"\"b\"",
    "\"x\ny\"",
    "\"a,b\tc\"",
    "null",
    "Sci/Tech",
];

/// One field of a line (split at the line's delimiter, a tab when it has one, else a comma,
/// ignoring quotes) replaced, dropped or doubled.
pub(super) fn field_value(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(line) = lines(data).choose(rng).cloned() else {
        return false;
    };
    let body = content(data, &line);
    let text = data[body.clone()].to_vec();
    let delimiter = if text.contains(&b'\t') { b'\t' } else { b',' };
    let mut fields: Vec<Vec<u8>> = text
        .split(|&b| b == delimiter)
        .map(<[u8]>::to_vec)
        .collect();
    let i = rng.random_range(0..fields.len());
    match rng.random_range(0..10) {
        0 => {
            fields.remove(i);
        }
        1 => {
            let copy = fields[i].clone();
            fields.insert(i, copy);
        }
        2 => fields[i] = "x".repeat(rng.random_range(1..=5000)).into_bytes(),
        _ => {
            fields[i] = FIELD_VALUES
                .choose(rng)
                .map_or_else(Vec::new, |v| v.as_bytes().to_vec());
        }
    }
    let new = fields.join(&delimiter);
    data.splice(body, new);
    true
}

/// A line cut at a random byte, the lines after it kept (a field ends mid-way, a quote stays
/// open across the next lines).
pub(super) fn cut_line(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let Some(line) = lines(data).choose(rng).cloned() else {
        return false;
    };
    let body = content(data, &line);
    if body.is_empty() {
        return false;
    }
    let cut = rng.random_range(body.start..body.end);
    data.drain(cut..body.end);
    true
}

/// One line of a JSON Lines file mutated as JSON (another line of the file supplies donor
/// values), its line end kept.
pub(super) fn json_line_value(data: &mut Vec<u8>, _: &[Vec<u8>], rng: &mut ChaCha8Rng) -> bool {
    let parsed: Vec<(std::ops::Range<usize>, Value)> = lines(data)
        .into_iter()
        .filter_map(|l| {
            let body = content(data, &l);
            let v = serde_json::from_slice::<Value>(&data[body.clone()]).ok()?;
            Some((body, v))
        })
        .collect();
    let Some((body, mut value)) = parsed.choose(rng).cloned() else {
        return false;
    };
    let donor = parsed.choose(rng).map(|(_, v)| v.clone());
    mutate_json(&mut value, donor.as_ref(), rng);
    let Ok(bytes) = serde_json::to_vec(&value) else {
        return false;
    };
    data.splice(body, bytes);
    true
}
