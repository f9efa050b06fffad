//! Starting servers on free loopback ports, and a small blocking client for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imdb_lora_infer::{Adapter, PredictOptions, Predictor};
use imdb_lora_serve::{ServeConfig, Server};

pub type B = burn::backend::Flex;

/// all-MiniLM-L6-v2 in `../shared` (or `$IMDB_LORA_SHARED`); fails loudly when absent.
pub fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// The PEFT adapter for MiniLM made by PEFT (fixtures/peft/minilm/adapter).
pub fn peft_adapter() -> PathBuf {
    imdb_lora_testkit::fixtures::fixture("peft/minilm/adapter")
}

pub fn predictor(model: &Path, adapters: &[Adapter], options: PredictOptions) -> Predictor<B> {
    Predictor::<B>::from_dir(model, adapters, options, &Default::default()).unwrap()
}

/// A server config on a free loopback port.
pub fn config() -> ServeConfig {
    let mut c = ServeConfig::new("test-model");
    c.addr = "127.0.0.1:0".parse().unwrap();
    c.backend = "flex".into();
    c.version = "test".into();
    c
}

pub fn start(predictor: Predictor<B>, config: ServeConfig) -> Server {
    Server::start(predictor, config).unwrap()
}

/// A server over MiniLM with the PEFT fixture adapter (merged), at the default options.
pub fn minilm_server(config: ServeConfig) -> Server {
    let adapter = Adapter::from_dir(&peft_adapter());
    start(
        predictor(&minilm(), &[adapter], PredictOptions::default()),
        config,
    )
}

/// A server over the tiny random classifier (labels neg/pos, 64 tokens at most).
pub fn tiny_server(config: ServeConfig) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    imdb_lora_testkit::fixtures::write_tiny_classifier(dir.path()).unwrap();
    let p = predictor(dir.path(), &[], PredictOptions::default());
    (start(p, config), dir)
}

/// An answer: status, headers we look at, and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An error answer in TEI's shape, with the status and error type expected.
    pub fn assert_error(&self, status: u16, error_type: &str) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.content_type.starts_with("application/json"),
            "{self:?}"
        );
        let v = self.json();
        assert_eq!(v["error_type"], error_type, "{}", self.body);
        v["error"].as_str().unwrap().to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

fn answer(mut r: ureq::http::Response<ureq::Body>) -> Answer {
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Answer {
        status: r.status().as_u16(),
        content_type,
        headers,
        body: r.body_mut().read_to_string().unwrap(),
    }
}

pub fn post(server: &Server, path: &str, body: &str) -> Answer {
    let url = format!("http://{}{path}", server.addr());
    answer(
        agent()
            .post(&url)
            .header("content-type", "application/json")
            .send(body)
            .unwrap(),
    )
}

pub fn get(server: &Server, path: &str) -> Answer {
    let url = format!("http://{}{path}", server.addr());
    answer(agent().get(&url).call().unwrap())
}
