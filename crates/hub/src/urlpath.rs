//! Percent-encoding of URL path pieces, shared by the Hub client (building `resolve` URLs) and the
//! loopback mirror (decoding them, so it reads exactly what the client writes); a tiny RFC 3986
//! subset so that no URL crate is needed.

/// Characters that never need escaping in a path segment (RFC 3986 "unreserved").
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Escape everything except unreserved characters; `/` is escaped too (used for revisions such as
/// `refs/pr/1`, which the Hub expects as one segment).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escape each `/`-separated segment, keeping the separators (file paths inside a repository).
pub fn encode_path(s: &str) -> String {
    s.split('/')
        .map(encode_component)
        .collect::<Vec<_>>()
        .join("/")
}

/// Undo percent-escapes; `None` for malformed escapes or non-UTF-8 results.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_separators() {
        assert_eq!(
            encode_path("plain_text/train 1.parquet"),
            "plain_text/train%201.parquet"
        );
        assert_eq!(encode_component("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(decode("refs%2Fpr%2F1").as_deref(), Some("refs/pr/1"));
        let s = "dir/ünï côdé?#.txt";
        assert_eq!(decode(&encode_path(s)).as_deref(), Some(s));
    }

    #[test]
    fn rejects_malformed_escapes() {
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%FF"), None); // not UTF-8
    }
}
