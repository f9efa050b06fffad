//! Capacity, deadlines and shutdown: 429 past the limit instead of an unbounded queue, 503
//! past the request deadline, in-flight requests answered on shutdown, then no more
//! connections.

use std::time::Duration;

use imdb_lora_infer::PredictOptions;
use serde_json::json;

use crate::client::{config, get, minilm_server, post, predictor, start, tiny_server};

fn long_review(i: usize) -> String {
    format!("Review {i}. ") + &"The plot meanders, yet the acting holds it together. ".repeat(20)
}

#[test]
fn above_capacity_requests_get_429_at_once() {
    let mut c = config();
    c.limits.max_concurrent_requests = 4;
    let server = minilm_server(c);
    // A batch larger than the whole capacity can never be taken.
    let batch: Vec<String> = (0..5).map(long_review).collect();
    post(
        &server,
        "/predict",
        &json!({"inputs": batch, "truncate": true}).to_string(),
    )
    .assert_error(429, "overloaded");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    let body = json!({"inputs": long_review(i), "truncate": true});
                    post(server, "/predict", &body.to_string()).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(ok + refused, statuses.len(), "{statuses:?}");
    assert!(ok >= 1 && refused >= 1, "{statuses:?}");
    // Capacity comes back once the work is done.
    assert_eq!(
        post(&server, "/predict", r#"{"inputs": "fine"}"#).status,
        200
    );
}

#[test]
fn a_request_past_its_deadline_gets_503_timeout() {
    let mut c = config();
    c.request_timeout = Duration::ZERO;
    let (server, _dir) = tiny_server(c);
    let msg = post(&server, "/predict", r#"{"inputs": "w1 w2"}"#).assert_error(503, "timeout");
    assert!(msg.contains("deadline"), "{msg}");
    assert_eq!(get(&server, "/health").status, 200);
}

#[test]
fn shutdown_answers_what_is_in_flight_then_refuses_connections() {
    let server = minilm_server(config());
    let addr = server.addr();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let started = started_tx.clone();
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                let body = json!({"inputs": long_review(i), "truncate": true}).to_string();
                let request = format!(
                    "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
                started.send(()).unwrap();
                let mut reply = String::new();
                std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
                reply
            })
        })
        .collect();
    for _ in 0..8 {
        started_rx.recv().unwrap();
    }
    // Every request is sent; once the server has read them all (they are in flight), stop it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !get(&server, "/metrics")
        .body
        .contains("te_request_count{method=\"single\"} 8")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the requests never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.shutdown().unwrap();
    for client in clients {
        let reply = client.join().unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting"
    );
}

#[test]
fn a_non_loopback_address_needs_allow_remote_and_limits_must_fit() {
    let dir = tempfile::tempdir().unwrap();
    imdb_lora_testkit::fixtures::write_tiny_classifier(dir.path()).unwrap();
    let load = || predictor(dir.path(), &[], PredictOptions::default());
    let mut c = config();
    c.addr = "0.0.0.0:0".parse().unwrap();
    let err = imdb_lora_serve::Server::start(load(), c.clone()).unwrap_err();
    assert!(err.to_string().contains("--allow-remote"), "{err}");
    c.allow_remote = true;
    let server = start(load(), c);
    assert!(server.addr().ip().is_unspecified());
    server.shutdown().unwrap();

    // The tiny model's inputs are at most 64 tokens: a budget of 32 could never hold one.
    let mut c = config();
    c.limits.max_batch_tokens = 32;
    let err = imdb_lora_serve::Server::start(load(), c).unwrap_err();
    assert!(err.to_string().contains("max-batch-tokens"), "{err}");
    let mut c = config();
    c.limits.max_client_batch_size = 0;
    let err = imdb_lora_serve::Server::start(load(), c).unwrap_err();
    assert!(err.to_string().contains("max-client-batch-size"), "{err}");
    let mut c = config();
    c.tokenization_workers = 0;
    let err = imdb_lora_serve::Server::start(load(), c).unwrap_err();
    assert!(err.to_string().contains("tokenization-workers"), "{err}");
}
