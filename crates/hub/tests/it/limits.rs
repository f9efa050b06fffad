//! Network and server limits: a download has an overall deadline, stops at the size the server
//! announced, the files of one fetch come from one commit, and a token bound for a plain-http
//! remote endpoint is warned about.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use imdb_lora_hub::{HubClient, HubConfig, Repo, RepoType, Source};
use imdb_lora_hub_mirror::{Fault, HubMirror};
use imdb_lora_testkit::shared::MINILM_REPO;

use crate::download::{assert_cache_clean, hub_root};

/// A client configured as from the environment, with only these variables set.
fn client_from_vars(vars: &[(&str, &str)]) -> HubClient {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    HubClient::new(HubConfig::from_vars(move |k| {
        vars.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    }))
}

#[test]
fn a_trickling_server_is_cut_off_at_the_download_deadline() {
    // One byte every 20 ms: no single read waits long enough for the read timeout, and the
    // 466 KB tokenizer.json would take 2.6 hours.
    let mirror = HubMirror::start(&hub_root()).unwrap();
    mirror.set_fault(Some(Fault::Trickle {
        bytes: 1,
        every: Duration::from_millis(20),
    }));
    let cache = tempfile::tempdir().unwrap();
    let c = client_from_vars(&[
        ("HF_ENDPOINT", &mirror.endpoint()),
        ("HF_HUB_CACHE", cache.path().to_str().unwrap()),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("IMDB_LORA_DOWNLOAD_DEADLINE", "1"),
    ]);
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let repo = Repo::model(MINILM_REPO).unwrap();
        let _ = tx.send(c.download(&repo, "tokenizer.json"));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("still downloading from a trickling server after 30 s: no overall deadline")
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, imdb_lora_hub::HubError::DeadlineExceeded { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("tokenizer.json")
            && msg.contains(&mirror.endpoint())
            && msg.contains("deadline of 1 s")
            && msg.contains("IMDB_LORA_DOWNLOAD_DEADLINE"),
        "{msg}"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "gave up after {took:?}");
    assert_cache_clean(cache.path());
}

#[test]
fn a_server_sending_more_than_it_announced_is_cut_off_at_the_announced_size() {
    // The body has no length and runs 64 MiB past the 612 bytes the metadata announced.
    let mirror = HubMirror::start(&hub_root()).unwrap();
    mirror.set_fault(Some(Fault::Overlong { extra: 64 << 20 }));
    let cache = tempfile::tempdir().unwrap();
    let c = HubClient::new(HubConfig::new(&mirror.endpoint(), cache.path()).with_progress(false));
    let err = c
        .download(&Repo::model(MINILM_REPO).unwrap(), "config.json")
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            imdb_lora_hub::HubError::Oversized { expected: 612, .. }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("config.json") && msg.contains("612 bytes"),
        "{msg}"
    );
    assert_cache_clean(cache.path());
}

/// Two commits of `org/pinned` on disk, as the mirror serves them (`resolve/<commit>/...`).
const COMMIT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const COMMIT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn two_commit_tree(root: &Path) {
    for (commit, files) in [
        (
            COMMIT_A,
            &[("config.json", "A config"), ("weights.bin", "A weights")][..],
        ),
        (
            COMMIT_B,
            &[
                ("config.json", "B config"),
                ("weights.bin", "B weights"),
                ("extra.txt", "only in B"),
            ][..],
        ),
    ] {
        let dir = root.join("org/pinned/resolve").join(commit);
        fs::create_dir_all(&dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
    }
}

#[test]
fn the_files_of_one_fetch_come_from_the_commit_the_first_resolved_to() {
    let tree = tempfile::tempdir().unwrap();
    two_commit_tree(tree.path());
    let mirror = HubMirror::start(tree.path()).unwrap();
    mirror.set_ref("org/pinned", "main", COMMIT_A);
    // A push lands after the first file (its HEAD and GET): `main` is then commit B.
    mirror.set_ref_after(2, "org/pinned", "main", COMMIT_B);
    let cache = tempfile::tempdir().unwrap();
    let c = HubClient::new(HubConfig::new(&mirror.endpoint(), cache.path()).with_progress(false));
    let src = Source::parse("org/pinned", RepoType::Model).unwrap();

    let fetched = src
        .fetch(&c, ["config.json", "weights.bin"], ["extra.txt"])
        .unwrap();
    let snapshot = cache.path().join("models--org--pinned/snapshots");
    let [config, weights] = &fetched.required;
    assert_eq!(fs::read_to_string(config).unwrap(), "A config");
    assert_eq!(
        fs::read_to_string(weights).unwrap(),
        "A weights",
        "the second file came from the branch after the push, not the first file's commit"
    );
    assert_eq!(*config, snapshot.join(COMMIT_A).join("config.json"));
    assert_eq!(*weights, snapshot.join(COMMIT_A).join("weights.bin"));
    assert_eq!(
        fetched.optional,
        [None],
        "commit A has no extra.txt, whatever main has now"
    );
    assert_eq!(fetched.commit.as_deref(), Some(COMMIT_A));
    let later: Vec<_> = mirror
        .requests()
        .into_iter()
        .skip(2)
        .map(|r| r.target)
        .collect();
    assert!(
        later
            .iter()
            .all(|t| t.starts_with(&format!("/org/pinned/resolve/{COMMIT_A}/"))),
        "later files must be requested at the commit: {later:?}"
    );
    assert_eq!(
        fs::read_to_string(cache.path().join("models--org--pinned/refs/main")).unwrap(),
        COMMIT_A
    );

    // The next fetch resolves the branch afresh: everything from commit B.
    let again = src
        .fetch(&c, ["config.json", "weights.bin"], ["extra.txt"])
        .unwrap();
    assert_eq!(fs::read_to_string(&again.required[1]).unwrap(), "B weights");
    assert!(
        again.optional[0]
            .as_ref()
            .is_some_and(|p| p.starts_with(snapshot.join(COMMIT_B)))
    );
}

/// Every WARN (or more severe) event's fields, one string per event, from the current thread.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The warnings `f` logs on this thread.
fn warnings_of(f: impl FnOnce()) -> Vec<String> {
    let warnings = Warnings::default();
    tracing::subscriber::with_default(warnings.clone(), f);
    warnings.lines()
}

#[test]
fn a_token_bound_for_a_plain_http_remote_endpoint_is_warned_about_once() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let repo = Repo::model(MINILM_REPO).unwrap();
    // TEST-NET-1 (RFC 5737): never a real host; the requests fail, the warning comes first.
    let remote = "http://192.0.2.1:9";
    let mut config = HubConfig::from_vars(|k| match k {
        "HF_ENDPOINT" => Some(remote.to_owned()),
        "HF_HUB_CACHE" => Some(cache_dir.to_owned()),
        "HF_TOKEN" => Some("hf_secret_token".to_owned()),
        _ => None,
    });
    config.connect_timeout = Duration::from_millis(200);
    let c = HubClient::new(config.clone());
    let warned = warnings_of(|| {
        assert!(c.download(&repo, "config.json").is_err());
        assert!(c.clone().download(&repo, "vocab.txt").is_err());
    });
    let about_token: Vec<_> = warned.iter().filter(|w| w.contains("token")).collect();
    assert_eq!(about_token.len(), 1, "{warned:?}");
    assert!(
        about_token[0].contains(remote) && !about_token[0].contains("hf_secret_token"),
        "{warned:?}"
    );

    // The same client over https, or without a token: nothing to warn about.
    let https = HubClient::new(config.clone().with_endpoint("https://192.0.2.1:9"));
    let mut no_token = config;
    no_token.token = None;
    let no_token = HubClient::new(no_token);
    let warned = warnings_of(|| {
        assert!(https.download(&repo, "config.json").is_err());
        assert!(no_token.download(&repo, "config.json").is_err());
    });
    assert!(warned.iter().all(|w| !w.contains("token")), "{warned:?}");

    // A loopback mirror (the air-gapped setup) gets the token without a warning.
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let local =
        HubClient::new(HubConfig::new(&mirror.endpoint(), cache.path()).with_progress(false));
    let mut local_config = local.config().clone();
    local_config.token = Some("hf_secret_token".into());
    let local = HubClient::new(local_config);
    let warned = warnings_of(|| {
        local.download(&repo, "config.json").unwrap();
    });
    assert!(warned.is_empty(), "{warned:?}");
}

#[test]
fn partial_downloads_a_killed_process_left_are_swept_once_stale() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let blobs = cache
        .path()
        .join("models--sentence-transformers--all-MiniLM-L6-v2/blobs");
    fs::create_dir_all(&blobs).unwrap();
    // As the temp files of imdb_lora_fsio::AtomicFile look: one a killed process left long ago, one
    // that may be another process's download in progress.
    let (stale, live) = (
        blobs.join(".abc123.Xy7Qz1.incomplete"),
        blobs.join(".def456.Pq2Rs3.incomplete"),
    );
    for f in [&stale, &live] {
        fs::write(f, b"partial").unwrap();
    }
    let old =
        std::time::SystemTime::now() - imdb_lora_hub::STALE_DOWNLOAD_AGE - Duration::from_secs(60);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let c = HubClient::new(HubConfig::new(&mirror.endpoint(), cache.path()).with_progress(false));
    c.download(&Repo::model(MINILM_REPO).unwrap(), "config.json")
        .unwrap();
    assert!(!stale.exists(), "a stale partial download survived");
    assert!(
        live.exists(),
        "a partial download that may be live was removed"
    );
}
