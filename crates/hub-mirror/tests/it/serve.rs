//! The mirror as a client on the wire sees it: Hub headers, `HEAD`, byte ranges, refused path
//! traversal and methods, and stopping on drop (moved here from the Hub client's download tests).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use imdb_lora_hub_mirror::{HubMirror, MIRROR_COMMIT};
use imdb_lora_testkit::shared::MINILM_REPO;

/// sha256 of every shared file, from the committed `SHA256SUMS` (independent of our hashing code).
fn sums() -> HashMap<String, String> {
    imdb_lora_testkit::shared::sha256_sums().unwrap_or_else(|e| panic!("{e}"))
}

/// `shared/hub`, or a test failure that says where it was looked for and how to point at it.
fn hub_root() -> PathBuf {
    imdb_lora_testkit::shared::hub_root().unwrap_or_else(|e| panic!("{e}"))
}

/// Raw HTTP/1.1 exchange (ureq would normalise `..` away before sending).
fn raw_request(addr: std::net::SocketAddr, request: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8(buf[..split].to_vec()).unwrap(),
        buf[split + 4..].to_vec(),
    )
}

#[test]
fn mirror_serves_hub_headers_head_and_ranges_and_refuses_traversal() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let sha = &sums()[&format!("{MINILM_REPO}/resolve/main/config.json")];
    let path = format!("/{MINILM_REPO}/resolve/main/config.json");

    let (head, body) = raw_request(
        mirror.addr(),
        &format!("HEAD {path} HTTP/1.1\r\nConnection: close\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("X-Linked-Etag: \"{sha}\"")),
        "{head}"
    );
    assert!(
        head.contains(&format!("X-Repo-Commit: {MIRROR_COMMIT}")),
        "{head}"
    );
    assert!(head.contains("Content-Length: 612"), "{head}");
    assert!(body.is_empty());

    let (head, body) = raw_request(
        mirror.addr(),
        &format!("GET {path} HTTP/1.1\r\nRange: bytes=2-11\r\nConnection: close\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(head.contains("Content-Range: bytes 2-11/612"), "{head}");
    let full = fs::read(hub_root().join(&path[1..])).unwrap();
    assert_eq!(body, full[2..12]);

    let (head, _) = raw_request(
        mirror.addr(),
        &format!("GET {path} HTTP/1.1\r\nRange: bytes=999-\r\nConnection: close\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 416"), "{head}");

    for evil in [
        "/../../etc/passwd",
        "/_lfs/../SHA256SUMS",
        "/x/resolve/main/%2E%2E/%2E%2E/SHA256SUMS",
    ] {
        let (head, _) = raw_request(
            mirror.addr(),
            &format!("GET {evil} HTTP/1.1\r\nConnection: close\r\n\r\n"),
        );
        assert!(
            head.starts_with("HTTP/1.1 400") || head.starts_with("HTTP/1.1 404"),
            "{evil}: {head}"
        );
    }
    let (head, _) = raw_request(
        mirror.addr(),
        &format!("POST {path} HTTP/1.1\r\nConnection: close\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    let (head, _) = raw_request(
        mirror.addr(),
        &format!("GET /{MINILM_REPO}/resolve/main/nope.bin HTTP/1.1\r\nConnection: close\r\n\r\n"),
    );
    assert!(
        head.starts_with("HTTP/1.1 404") && head.contains("X-Error-Code: EntryNotFound"),
        "{head}"
    );
}

#[test]
fn mirror_stops_on_drop() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let addr = mirror.addr();
    // A keep-alive connection is open while the mirror is dropped: drop must not hang on it.
    let _idle = TcpStream::connect(addr).unwrap();
    drop(mirror);
    assert!(
        TcpStream::connect(addr).is_err(),
        "port should be closed after drop"
    );
}

#[test]
fn connections_over_the_limit_get_503_and_the_log_keeps_only_the_newest() {
    let mirror = HubMirror::builder(&hub_root())
        .max_connections(2)
        .log_capacity(4)
        .start()
        .unwrap();
    let addr = mirror.addr();
    // Two idle keep-alive connections take both slots; the accept loop handles connections in
    // order, so once a request on a third one is answered, both were registered first.
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let (head, _) = raw_request(addr, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    drop(idle);

    // Slots free again once the idle connections close (their threads notice the EOF).
    let path = format!("/{MINILM_REPO}/resolve/main/config.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (head, _) = raw_request(
            addr,
            &format!("HEAD {path} HTTP/1.1\r\nConnection: close\r\n\r\n"),
        );
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still refused: {head}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for _ in 0..9 {
        raw_request(
            addr,
            &format!("HEAD {path} HTTP/1.1\r\nConnection: close\r\n\r\n"),
        );
    }
    let log = mirror.requests();
    assert!(log.len() <= 4, "{} entries kept", log.len());
    assert!(log.iter().all(|r| r.method == "HEAD"));
}

#[test]
fn a_non_loopback_address_is_refused_unless_remote_access_is_asked_for() {
    // The mirror serves files to anyone who connects, without authentication: an address other
    // than loopback (here every interface) must be asked for explicitly.
    let any = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let err = HubMirror::builder(&hub_root())
        .bind(any)
        .start()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("0.0.0.0") && msg.contains("allow_remote") && msg.contains("--allow-remote"),
        "{msg}"
    );
    // Asked for, it serves (every interface includes loopback).
    let mirror = HubMirror::builder(&hub_root())
        .bind(any)
        .allow_remote(true)
        .start()
        .unwrap();
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], mirror.addr().port()));
    let (head, _) = raw_request(
        local,
        &format!(
            "HEAD /{MINILM_REPO}/resolve/main/config.json HTTP/1.1\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Loopback needs no opt-in.
    assert!(
        HubMirror::builder(&hub_root())
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .start()
            .is_ok()
    );
}

#[test]
fn commit_directories_announce_their_commit_and_set_ref_moves_a_branch() {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hub-mirror-refs-{}", std::process::id()));
    for (rev, content) in [("main", "on main"), (commit, "at the commit")] {
        let dir = root.join("org/r/resolve").join(rev);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f.txt"), content).unwrap();
    }
    let mirror = HubMirror::start(&root).unwrap();
    let get = |rev: &str| {
        let (head, body) = raw_request(
            mirror.addr(),
            &format!("GET /org/r/resolve/{rev}/f.txt HTTP/1.1\r\nConnection: close\r\n\r\n"),
        );
        let announced = head
            .lines()
            .find_map(|l| l.strip_prefix("X-Repo-Commit: "))
            .unwrap()
            .to_owned();
        (announced, String::from_utf8(body).unwrap())
    };
    assert_eq!(
        get("main"),
        (MIRROR_COMMIT.to_owned(), "on main".to_owned())
    );
    assert_eq!(get(MIRROR_COMMIT).1, "on main");
    assert_eq!(get(commit), (commit.to_owned(), "at the commit".to_owned()));
    // A push after one more request: that one still sees the old main, the next the commit.
    mirror.set_ref_after(1, "org/r", "main", commit);
    assert_eq!(get("main").1, "on main");
    assert_eq!(get("main"), (commit.to_owned(), "at the commit".to_owned()));
    drop(mirror);
    fs::remove_dir_all(&root).unwrap();
}
