//! A check of the Thrift structures in a parquet file — its footer and every page header —
//! before the parquet library reads them: each list, set and map must fit in the bytes left.
//!
//! Why it is here and not a crate: `parquet` 60 skips unknown fields itself, and skipping a
//! `list<bool>` consumes no bytes per element (the compact protocol spends one byte on each),
//! so a 1 KB file declaring a list of 2^31 booleans, or a list of such lists, keeps the reader
//! spinning for minutes (the fuzz harness found one: `regressions/parquet/
//! timeout-s1-i66046.parquet`). No crate offers a bounded validator of raw compact-protocol
//! bytes; this walk is a few rules of the compact protocol's wire format, nothing more: it
//! decodes no values but a page header's compressed size.

/// The deepest nesting parquet itself accepts when skipping.
const MAX_DEPTH: u32 = 64;

/// A walk over compact-protocol bytes.
struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Why the bytes at an offset are not Thrift the reader could finish.
pub(crate) type Damage = String;

impl<'a> Walk<'a> {
    fn left(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    fn byte(&mut self) -> Result<u8, Damage> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| format!("Thrift data ends at byte {}", self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, Damage> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("an overlong varint at byte {}", self.at))
    }

    fn zigzag(&mut self) -> Result<i64, Damage> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn skip(&mut self, n: u64) -> Result<(), Damage> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > self.left() {
            return Err(format!(
                "{n} bytes declared at byte {}, {} left",
                self.at,
                self.left()
            ));
        }
        self.at += n;
        Ok(())
    }

    /// `count` elements that take at least `each` bytes apiece must fit in what is left.
    fn fits(&self, count: u64, each: u64, what: &str) -> Result<(), Damage> {
        if count.saturating_mul(each) > self.left() as u64 {
            return Err(format!(
                "a {what} of {count} elements at byte {}, with {} bytes left",
                self.at,
                self.left()
            ));
        }
        Ok(())
    }

    /// One value of compact type `t` (in a list, a boolean takes a byte).
    fn value(&mut self, t: u8, in_list: bool, depth: u32) -> Result<(), Damage> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "nesting deeper than {MAX_DEPTH} at byte {}",
                self.at
            ));
        }
        match t {
            1 | 2 if in_list => self.skip(1),
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(|_| ()),
            7 => self.skip(8),
            8 => {
                let n = self.varint()?;
                self.skip(n)
            }
            9 | 10 => {
                let head = self.byte()?;
                let count = match head >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                let elem = head & 0x0f;
                self.fits(count, 1, "list")?;
                for _ in 0..count {
                    self.value(elem, true, depth + 1)?;
                }
                Ok(())
            }
            11 => {
                let count = self.varint()?;
                if count == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                self.fits(count, 2, "map")?;
                for _ in 0..count {
                    self.value(kinds >> 4, true, depth + 1)?;
                    self.value(kinds & 0x0f, true, depth + 1)?;
                }
                Ok(())
            }
            12 => self.fields(depth + 1, |_, _| Ok(false)),
            13 => self.skip(16),
            other => Err(format!("unknown Thrift type {other} at byte {}", self.at)),
        }
    }

    /// A struct's fields up to its stop byte; `seen(id, walk)` is called before each value
    /// of an i32 field, and may read it (returning true when it did).
    fn fields(
        &mut self,
        depth: u32,
        mut seen: impl FnMut(i16, &mut Self) -> Result<bool, Damage>,
    ) -> Result<(), Damage> {
        let mut last: i16 = 0;
        loop {
            let head = self.byte()?;
            let t = head & 0x0f;
            if t == 0 {
                return Ok(());
            }
            let id = match head >> 4 {
                0 => i16::try_from(self.zigzag()?).unwrap_or(0),
                delta => last.wrapping_add(i16::from(delta)),
            };
            last = id;
            if t == 5 && seen(id, self)? {
                continue;
            }
            self.value(t, false, depth)?;
        }
    }
}

/// Checks the Thrift struct starting at `bytes[0]` (a footer, a page header) and returns its
/// length and, for a page header, its `compressed_page_size` (field 3).
pub(crate) fn check_struct(bytes: &[u8]) -> Result<(usize, Option<i64>), Damage> {
    let mut walk = Walk { bytes, at: 0 };
    let mut compressed = None;
    walk.fields(1, |id, w| {
        if id == 3 {
            compressed = Some(w.zigzag()?);
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok((walk.at, compressed))
}

/// Checks the page headers of the column chunk `bytes[start..end]`, page after page.
pub(crate) fn check_pages(bytes: &[u8], start: usize, end: usize) -> Result<(), Damage> {
    let end = end.min(bytes.len());
    let mut at = start;
    while at < end {
        let (len, compressed) = check_struct(&bytes[at..end])
            .map_err(|why| format!("page header at byte {at}: {why}"))?;
        // Without a usable size the next header is not found; parquet reports that itself.
        let Some(size) = compressed.and_then(|n| usize::try_from(n).ok()) else {
            return Ok(());
        };
        at = at.saturating_add(len).saturating_add(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_must_fit_in_the_bytes_left() {
        // struct { 1: list<bool> of 3 } then stop: field header 0x19 (delta 1, list), list
        // header 0x31 (3 elements, bool), 3 bytes, stop.
        assert_eq!(check_struct(&[0x19, 0x31, 1, 2, 1, 0]), Ok((6, None)));
        // The same list declaring 2^31 elements (size 15 → varint): refused, not walked.
        let forged = [0x19, 0xf1, 0x80, 0x80, 0x80, 0x80, 0x08, 1, 0];
        let err = check_struct(&forged).unwrap_err();
        assert!(err.contains("a list of 2147483648 elements"), "{err}");
    }

    #[test]
    fn a_page_header_gives_its_compressed_size() {
        // struct { 1: i32 0, 2: i32 5, 3: i32 4 } stop: zigzag 5 = 10, 4 = 8.
        let header = [0x15, 0x00, 0x15, 0x0a, 0x15, 0x08, 0x00];
        assert_eq!(check_struct(&header), Ok((7, Some(4))));
        let mut chunk = header.to_vec();
        chunk.extend([9, 9, 9, 9]);
        assert_eq!(check_pages(&chunk, 0, chunk.len()), Ok(()));
        // Nesting beyond parquet's own limit.
        let mut deep = vec![0x1c; 70];
        deep.extend(vec![0; 71]);
        assert!(check_struct(&deep).unwrap_err().contains("nesting deeper"));
    }
}
