//! The HTTP/1.1 wire format the mirror speaks: reading a request head, the reply it builds
//! (status, headers, body from a text or a file slice, single byte ranges), and writing it with the
//! body faults of [`Fault`] applied.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::Fault;

/// Upper bound on a request head; we only ever receive small GET/HEAD requests.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A request head: all the mirror looks at.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) close: bool,
    pub(crate) range: Option<String>,
}

/// Read one request head; `Ok(None)` on a clean end of the connection.
///
/// Every line is read through `take`, so a client that never sends a newline cannot make the
/// mirror buffer more than [`MAX_HEAD_BYTES`] (+1, to see that the limit was passed).
pub(crate) fn read_request<R: BufRead>(reader: &mut R) -> io::Result<Option<Request>> {
    let oversized = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated or oversized request head",
        )
    };
    let mut line = String::new();
    let mut total = 0;
    if bounded_line(reader, &mut line, MAX_HEAD_BYTES + 1)? == 0 {
        return Ok(None);
    }
    total += line.len();
    if total > MAX_HEAD_BYTES {
        return Err(oversized());
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed request line",
        ));
    };
    let mut req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        // HTTP/1.0 closes by default, HTTP/1.1 keeps alive.
        close: version == "HTTP/1.0",
        range: None,
    };
    loop {
        let mut header = String::new();
        let n = bounded_line(reader, &mut header, MAX_HEAD_BYTES + 1 - total)?;
        total += n;
        if n == 0 || total > MAX_HEAD_BYTES {
            return Err(oversized());
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "connection" => req.close = value.eq_ignore_ascii_case("close"),
                "range" => req.range = Some(value.to_owned()),
                _ => {}
            }
        }
    }
    Ok(Some(req))
}

/// `read_line` reading at most `limit` bytes.
fn bounded_line<R: BufRead>(reader: &mut R, line: &mut String, limit: usize) -> io::Result<usize> {
    reader
        .by_ref()
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_line(line)
}

/// What follows the reply head.
pub(crate) enum Body {
    Empty,
    Text(String),
    /// A file slice: `offset`, `len`.
    File(PathBuf, u64, u64),
}

/// A reply, before [`send`] applies the body faults and writes it.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body,
}

impl Reply {
    pub(crate) fn text(status: u16, msg: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Text(format!("{msg}\n")),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A 200/206/416 reply for a file, honouring a single `Range: bytes=...`.
pub(crate) fn file_reply(
    req: &Request,
    file: PathBuf,
    len: u64,
    mut headers: Vec<(&'static str, String)>,
) -> Reply {
    headers.push(("Accept-Ranges", "bytes".into()));
    let Some(range) = req.range.as_deref() else {
        return Reply {
            status: 200,
            headers,
            body: Body::File(file, 0, len),
        };
    };
    match parse_range(range, len) {
        RangeSpec::Ignore => Reply {
            status: 200,
            headers,
            body: Body::File(file, 0, len),
        },
        RangeSpec::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{len}")));
            Reply {
                status: 416,
                headers,
                body: Body::Empty,
            }
        }
        RangeSpec::Slice(start, end) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            Reply {
                status: 206,
                headers,
                body: Body::File(file, start, end - start + 1),
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// Not a single byte range we understand: serve the whole file (RFC 9110 allows ignoring).
    Ignore,
    Unsatisfiable,
    /// Inclusive byte range.
    Slice(u64, u64),
}

fn parse_range(spec: &str, len: u64) -> RangeSpec {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => b
            .parse::<u64>()
            .ok()
            .map(|n| (len.saturating_sub(n), len.checked_sub(1), n == 0)),
        (false, true) => a
            .parse::<u64>()
            .ok()
            .map(|s| (s, len.checked_sub(1), false)),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, Some(e.min(len.saturating_sub(1))), false)),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeSpec::Ignore,
        Some((_, _, true)) | Some((_, None, _)) => RangeSpec::Unsatisfiable,
        Some((s, Some(e), false)) if s < len && s <= e => RangeSpec::Slice(s, e),
        Some(_) => RangeSpec::Unsatisfiable,
    }
}

/// Write the reply; returns whether the connection may be reused.
pub(crate) fn send(
    w: &mut TcpStream,
    req: &Request,
    reply: Reply,
    fault: Option<&Fault>,
) -> io::Result<bool> {
    let head_only = req.method == "HEAD";
    let is_file = matches!(reply.body, Body::File(..));
    let (declared, to_send, drop_after) = match &reply.body {
        Body::Empty => (0, 0, false),
        Body::Text(t) => (t.len() as u64, t.len() as u64, false),
        Body::File(_, _, len) => match fault {
            Some(Fault::TruncateBody { keep }) => ((*len).min(*keep), (*len).min(*keep), false),
            Some(Fault::DropConnection { after }) => (*len, (*len).min(*after), true),
            Some(Fault::Overlong { .. }) => (*len, *len, !head_only),
            _ => (*len, *len, false),
        },
    };
    // Overlong: no length on the GET, so the body runs until the connection closes.
    let overlong = match fault {
        Some(Fault::Overlong { extra }) if is_file && !head_only => Some(*extra),
        _ => None,
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if overlong.is_none() {
        head.push_str(&format!("Content-Length: {declared}\r\n"));
    }
    if drop_after && !head_only {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    if !head_only {
        match reply.body {
            Body::Empty => {}
            Body::Text(t) => w.write_all(t.as_bytes())?,
            Body::File(path, offset, _) => {
                let mut f = File::open(&path)?;
                f.seek(SeekFrom::Start(offset))?;
                let mut body = f.take(to_send);
                match fault {
                    Some(Fault::Trickle { bytes, every }) => trickle(&mut body, w, *bytes, *every)?,
                    _ => {
                        io::copy(&mut body, w)?;
                    }
                }
                if let Some(extra) = overlong {
                    io::copy(&mut io::repeat(b'x').take(extra), w)?;
                }
            }
        }
    }
    w.flush()?;
    if drop_after && !head_only {
        // The server "goes away": no more bytes, connection closed.
        let _ = w.shutdown(Shutdown::Both);
        return Ok(false);
    }
    Ok(true)
}

/// Copy `body` to `w` in bursts of `bytes`, pausing `every` after each ([`Fault::Trickle`]); a
/// client that gives up closes the connection, and the next write fails.
fn trickle(body: &mut impl Read, w: &mut TcpStream, bytes: u64, every: Duration) -> io::Result<()> {
    loop {
        let sent = io::copy(&mut body.by_ref().take(bytes.max(1)), w)?;
        if sent == 0 {
            return Ok(());
        }
        w.flush()?;
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_without_newlines_is_refused_after_the_limit_not_buffered() {
        // 1 MiB of request line with no newline: only the limit (+1) may be read.
        let mut input = io::Cursor::new(vec![b'A'; 1 << 20]);
        let Err(err) = read_request(&mut input) else {
            panic!("an endless request line was accepted")
        };
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            input.position() <= (MAX_HEAD_BYTES + 1) as u64,
            "{}",
            input.position()
        );
        // The same through headers: a valid request line, then an endless header.
        let mut head = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        head.extend(vec![b'B'; 1 << 20]);
        let mut input = io::Cursor::new(head);
        assert!(read_request(&mut input).is_err());
        assert!(
            input.position() <= (MAX_HEAD_BYTES + 1) as u64,
            "{}",
            input.position()
        );
        // A normal head still parses.
        let mut input = io::Cursor::new(b"GET /x HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n".to_vec());
        let req = read_request(&mut input).unwrap().unwrap();
        assert_eq!(
            (req.target.as_str(), req.range.as_deref()),
            ("/x", Some("bytes=0-1"))
        );
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Slice(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Slice(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Slice(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), RangeSpec::Slice(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=9-3", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=0-", 0), RangeSpec::Unsatisfiable);
    }
}
