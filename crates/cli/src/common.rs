//! Options shared by the experiment subcommands: where the model and data come from, which
//! subset, and how they are resolved through the Hub cache.

use std::path::{Path, PathBuf};

use anyhow::Context;
use data::{SubsetSpec, TextTokenizer, TokenizedSplit, load_split};
use hub::{HubClient, HubConfig, RepoType, Source};
use infer::ModelFiles;

use crate::fetch::{self, DatasetFiles};

/// The full IMDb split size; asking for it means "no subset".
const FULL_SPLIT: usize = 25_000;

/// Model, data and subset options.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Base model: a Hub repository id (`owner/name[@revision]`) or a local directory.
    #[arg(long, default_value = fetch::DEFAULT_MODEL, value_name = "REPO|DIR")]
    pub model: String,
    /// IMDb parquet files: a Hub dataset id or a local directory holding
    /// `plain_text/{train,test}-00000-of-00001.parquet`.
    #[arg(long, default_value = data::imdb::DATASET, value_name = "REPO|DIR")]
    pub data: String,
    /// SMALL_RUN: a balanced, seeded 4,000-review train / 2,000-review test subset.
    #[arg(long, env = "SMALL_RUN", value_parser = clap::builder::BoolishValueParser::new(),
          default_value = "false", conflicts_with_all = ["train_n", "test_n"])]
    pub small: bool,
    /// Training reviews (balanced, seeded subset; default all 25,000).
    #[arg(long)]
    pub train_n: Option<usize>,
    /// Test reviews (balanced, seeded subset; default all 25,000).
    #[arg(long)]
    pub test_n: Option<usize>,
    /// Truncation length in tokens, [CLS] and [SEP] included (at most 512).
    #[arg(long, default_value_t = data::DEFAULT_MAX_LEN)]
    pub max_len: usize,
    /// Seed for subsets, data order, dropout and fresh weights.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Use only the Hugging Face cache and local directories; never the network.
    #[arg(long)]
    pub offline: bool,
}

impl DataArgs {
    /// A Hub client from the `HF_*` environment, offline if `--offline` says so, its download
    /// progress drawn by the UI.
    pub fn client(&self) -> HubClient {
        let config = HubConfig::from_env();
        let offline = config.offline || self.offline;
        HubClient::new(config.with_offline(offline)).with_progress(crate::ui::progress())
    }

    pub fn model_files(&self, client: &HubClient) -> anyhow::Result<ModelFiles> {
        let source = Source::parse(&self.model, RepoType::Model)?;
        fetch::fetch_model(client, &source).with_context(|| format!("model {}", self.model))
    }

    pub fn data_files(&self, client: &HubClient) -> anyhow::Result<DatasetFiles> {
        let source = Source::parse(&self.data, RepoType::Dataset)?;
        fetch::fetch_imdb(client, &source).with_context(|| format!("dataset {}", self.data))
    }

    /// `(train, test)` subset specifications.
    pub fn subsets(&self) -> (SubsetSpec, SubsetSpec) {
        if self.small {
            return (
                SubsetSpec::small_run_train(self.seed),
                SubsetSpec::small_run_test(self.seed),
            );
        }
        let spec = |n: Option<usize>| match n {
            Some(n) if n < FULL_SPLIT => SubsetSpec::balanced(n, self.seed),
            _ => SubsetSpec::full(self.seed),
        };
        (spec(self.train_n), spec(self.test_n))
    }

    pub fn tokenizer(&self, files: &ModelFiles) -> anyhow::Result<TextTokenizer> {
        Ok(TextTokenizer::from_files(
            &files.tokenizer_files(),
            self.max_len,
        )?)
    }

    pub fn load(
        &self,
        path: &Path,
        tokenizer: &TextTokenizer,
        spec: &SubsetSpec,
    ) -> anyhow::Result<TokenizedSplit> {
        let split = load_split(path, tokenizer, spec)?;
        tracing::info!(
            file = %path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            path = %path.display(),
            examples = split.examples.len(),
            negative = split.counts.get(0),
            positive = split.counts.get(1),
            truncated = split.stats.truncated,
            mean_tokens = split.stats.mean_len(),
            "loaded split"
        );
        Ok(split)
    }
}

/// Refuses a model whose head is not a two-label one: the IMDb task has exactly the labels
/// negative (0) and positive (1), and a 3-way head would train, then fail at evaluation.
pub fn require_two_labels(config: &bert::BertConfig, path: &Path) -> anyhow::Result<()> {
    let found = config.num_labels();
    anyhow::ensure!(
        found == 2,
        "{}: the model has {found} labels; IMDb sentiment needs 2 (negative, positive)",
        path.display()
    );
    Ok(())
}

/// The directory holding a model's files (for copying its tokenizer next to a saved model).
pub fn model_dir(files: &ModelFiles) -> PathBuf {
    files
        .config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
