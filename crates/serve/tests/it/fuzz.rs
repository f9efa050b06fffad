//! A seeded mutation fuzz of `/predict` over raw TCP: random JSON, wrong types, invalid
//! UTF-8, huge strings, truncated bodies, broken heads and slow senders. Every request gets a
//! 4xx JSON error or a valid answer (a connection the client itself cut short may get
//! nothing); the server never panics and keeps serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::client::{config, get, post, tiny_server};

/// Requests per run: the issue's floor.
const REQUESTS: usize = 10_000;

fn random_text(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..6) {
        0 => String::new(),
        1 => "w1 w2 w3".into(),
        2 => "w7 ".repeat(rng.random_range(1..200)),
        3 => (0..rng.random_range(1..40))
            .map(|_| char::from_u32(rng.random_range(0..0x11_0000)).unwrap_or('\u{fffd}'))
            .collect(),
        4 => "\u{0}\u{1b}[31m\t\r\n".into(),
        _ => "x".repeat(rng.random_range(0..5000)),
    }
}

fn random_value(rng: &mut ChaCha8Rng, depth: usize) -> Value {
    match rng.random_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e300),
        4 => json!(random_text(rng)),
        5 => Value::Array(
            (0..rng.random_range(0..40))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "inputs",
                "truncate",
                "raw_scores",
                "truncation_direction",
                "adapter",
                "x",
            ];
            Value::Object(
                (0..rng.random_range(0..6))
                    .map(|_| {
                        (
                            keys[rng.random_range(0..keys.len())].to_string(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

/// A request that is well-formed TEI, with random values in its fields.
fn plausible(rng: &mut ChaCha8Rng) -> Value {
    let inputs = match rng.random_range(0..4) {
        0 => json!(random_text(rng)),
        1 => json!(
            (0..rng.random_range(0..40))
                .map(|_| random_text(rng))
                .collect::<Vec<_>>()
        ),
        2 => json!(
            (0..rng.random_range(0..4))
                .map(|_| [random_text(rng)])
                .collect::<Vec<_>>()
        ),
        _ => random_value(rng, 0),
    };
    let mut v = json!({"inputs": inputs});
    for key in ["truncate", "raw_scores", "truncation_direction", "adapter"] {
        if rng.random_bool(0.3) {
            v[key] = match (key, rng.random_range(0..3)) {
                ("truncation_direction", 0) => {
                    json!(["left", "right", "Left"][rng.random_range(0..3)])
                }
                (_, 0) => json!(rng.random::<bool>()),
                _ => random_value(rng, 2),
            };
        }
    }
    v
}

fn mutate(rng: &mut ChaCha8Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..4) {
            0 => bytes[at] = rng.random(),
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(
                at,
                [b'"', b'[', b'{', b'\\', 0xff, 0xc3][rng.random_range(0..6)],
            ),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

/// What the fuzzer sends: a head (possibly lying about the length) and a body.
struct Wire {
    head: Vec<u8>,
    body: Vec<u8>,
    /// Close the connection before the body is complete.
    cut: bool,
    /// Send in small pieces with pauses.
    slow: bool,
    /// The head lies about the length or carries a mangled header.
    lie: bool,
}

fn request(rng: &mut ChaCha8Rng) -> Wire {
    let body: Vec<u8> = match rng.random_range(0..10) {
        0..=3 => plausible(rng).to_string().into_bytes(),
        4..=6 => {
            let v = plausible(rng).to_string().into_bytes();
            mutate(rng, v)
        }
        7 => random_value(rng, 0).to_string().into_bytes(),
        8 => (0..rng.random_range(0..300))
            .map(|_| rng.random())
            .collect(),
        _ => format!(
            "{{\"inputs\": \"{}\"}}",
            "w9 ".repeat(rng.random_range(1000..200_000))
        )
        .into_bytes(),
    };
    let cut = rng.random_bool(0.03);
    let slow = rng.random_bool(0.005);
    // A head promising more than is sent waits out the body deadline: rare, it is slow.
    let declared = if cut || rng.random_bool(0.002) {
        body.len() + rng.random_range(1..100)
    } else {
        body.len()
    };
    let mut lie = declared != body.len();
    let mut head = format!(
        "POST /predict HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n\
         Content-Length: {declared}\r\nConnection: close\r\n"
    );
    // A mangled header may leave the head unterminated: the connection then waits out the
    // read deadline. Rare, it is slow.
    if rng.random_bool(0.005) {
        let junk = mutate(rng, b"X-Junk: value\r\n".to_vec());
        head.push_str(&String::from_utf8_lossy(&junk));
        lie = true;
    }
    head.push_str("\r\n");
    Wire {
        head: head.into_bytes(),
        body,
        cut,
        slow,
        lie,
    }
}

/// Sends one request; the status and body, or `None` when the server closed without an
/// answer (allowed only for a request the client cut short or a malformed head).
fn send(addr: SocketAddr, wire: &Wire) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.set_nodelay(true);
    s.write_all(&wire.head).ok()?;
    if wire.slow {
        for chunk in wire.body.chunks(wire.body.len().div_ceil(5).max(1)) {
            s.write_all(chunk).ok()?;
            std::thread::sleep(Duration::from_millis(20));
        }
    } else {
        // A body the server refuses early (413) may meet a closed socket: that is fine.
        let _ = s.write_all(&wire.body);
    }
    if wire.cut {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status: u16 = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

#[test]
fn ten_thousand_mutated_requests_each_get_an_answer_or_a_4xx_json_error() {
    let mut c = config();
    c.read_timeout = Duration::from_secs(2);
    let (server, _dir) = tiny_server(c);
    let addr = server.addr();
    let threads = 4;
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = ChaCha8Rng::seed_from_u64(0x5e4e + t as u64);
                    let mut counts = [0usize; 3]; // ok, refused, no answer
                    for n in 0..REQUESTS / threads {
                        let wire = request(&mut rng);
                        match send(addr, &wire) {
                            Some((200, body)) => {
                                let v: Value = serde_json::from_str(&body)
                                    .unwrap_or_else(|e| panic!("request {t}/{n}: {e}: {body}"));
                                assert!(v.is_array(), "{body}");
                                counts[0] += 1;
                            }
                            Some((status, body)) => {
                                assert!(
                                    (400..500).contains(&status),
                                    "request {t}/{n}: status {status}: {body}"
                                );
                                // Errors hyper answers itself (a malformed head) have no body.
                                if !body.is_empty() {
                                    let v: Value =
                                        serde_json::from_str(&body).unwrap_or_else(|e| {
                                            panic!("request {t}/{n} {status}: {e}: {body}")
                                        });
                                    assert!(v["error"].is_string() && v["error_type"].is_string());
                                }
                                counts[1] += 1;
                            }
                            None => {
                                assert!(wire.cut || wire.lie, "request {t}/{n}: no answer");
                                counts[2] += 1;
                            }
                        }
                    }
                    counts
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold([0; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]])
    });
    eprintln!("fuzz: {counts:?} (answered, refused, no answer)");
    assert_eq!(counts.iter().sum::<usize>(), REQUESTS);
    assert!(
        counts[0] > REQUESTS / 20 && counts[1] > REQUESTS / 4,
        "{counts:?}"
    );
    // Still healthy and serving.
    assert_eq!(get(&server, "/health").status, 200);
    assert_eq!(
        post(&server, "/predict", r#"{"inputs": "w1 w2"}"#).status,
        200
    );
}
