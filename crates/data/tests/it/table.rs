//! The user-data reader (`imdb_lora_data::table`) end to end: the real AG News file in `shared/data`, the
//! committed fixtures in `fixtures/table/` (JSON Lines with string labels, a TSV with a header, a
//! Hub-sharded parquet dataset with `ClassLabel` names) and each kind of bad data.
//!
//! The fixtures are written by [`write_fixtures`]; `cargo test -p imdb-lora-data --test it --
//! --ignored make_table_fixtures` rewrites them, and a test checks that the committed files are
//! what it writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use imdb_lora_data::table::{
    Column, DatasetSpec, Format, NameSource, RawLabel, TableError, TableSpec, load_dataset,
    read_table, stratified_split,
};
use imdb_lora_data::{LabelCounts, Review};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/table");

fn fixtures() -> PathBuf {
    PathBuf::from(FIXTURES)
}

fn counts(reviews: &[Review]) -> Vec<usize> {
    LabelCounts::of(reviews.iter().map(|r| &r.label))
        .as_slice()
        .to_vec()
}

// ----- AG News, the real file -----

fn ag_news_spec(seed: u64) -> DatasetSpec {
    DatasetSpec {
        test_fraction: Some(0.2),
        table: TableSpec {
            text: Column::parse_list("2,3").unwrap(),
            label: Some("1".parse().unwrap()),
            ..TableSpec::default()
        },
        seed,
        ..DatasetSpec::new(
            imdb_lora_testkit::shared::ag_news_dir()
                .unwrap()
                .join("test.csv"),
        )
    }
}

#[test]
fn ag_news_reads_as_7600_rows_of_four_named_classes_shifted_to_zero() {
    let path = imdb_lora_testkit::shared::ag_news_dir()
        .unwrap()
        .join("test.csv");
    let spec = ag_news_spec(42).table;
    let t = read_table(&path, &spec).unwrap();
    assert_eq!(t.format, Format::Csv);
    assert!(!t.header, "the file has no header row");
    assert_eq!(t.columns, ["1", "2", "3"]);
    assert_eq!(t.rows.len(), 7_600);
    assert!(t.rows.iter().enumerate().all(|(i, r)| r.row == i));
    let names = t.class_names.as_ref().unwrap();
    assert_eq!(names.names, ["World", "Sports", "Business", "Sci/Tech"]);
    assert_eq!(
        names.source,
        NameSource::ClassesFile(path.with_file_name("classes.txt"))
    );
    assert_eq!(t.rows[0].label, RawLabel::Int(3));
    // Title, a space, description; the description's own spacing kept.
    assert_eq!(
        t.rows[0].text,
        "Fears for T N pension after talks Unions representing workers at Turner   Newall say \
         they are 'disappointed' after talks with stricken parent firm Federal Mogul."
    );

    let d = load_dataset(&ag_news_spec(42)).unwrap();
    assert_eq!(
        d.classes.names(),
        ["World", "Sports", "Business", "Sci/Tech"]
    );
    assert_eq!(d.classes.label_offset(), Some(1));
    assert_eq!(d.classes.raw_labels(), ["1", "2", "3", "4"]);
    assert_eq!(d.classes.train_counts(), [1_900; 4]);
    assert_eq!(d.text_columns, ["2", "3"]);
    assert_eq!(d.label_column, "1");
    assert_eq!((d.train.len(), d.test.len()), (6_080, 1_520));
    assert_eq!(counts(&d.test), [380; 4]);
    assert_eq!(counts(&d.train), [1_520; 4]);
    assert_eq!(d.train_files, std::slice::from_ref(&path));
    assert_eq!(d.test_files, [path]);
    // Label 3 (Business) is class 2; rows keep their place in the file.
    let row0 = d.train.iter().chain(&d.test).find(|r| r.row == 0).unwrap();
    assert_eq!(row0.label, 2);
    assert!(
        row0.text
            .starts_with("Fears for T N pension after talks Unions")
    );
    let mut rows: Vec<usize> = d.train.iter().chain(&d.test).map(|r| r.row).collect();
    rows.sort_unstable();
    assert_eq!(rows, (0..7_600).collect::<Vec<_>>());
}

#[test]
fn ag_news_hold_out_is_reproducible_and_seeded() {
    let test_rows = |seed| {
        let d = load_dataset(&ag_news_spec(seed)).unwrap();
        d.test.iter().map(|r| r.row).collect::<Vec<_>>()
    };
    let a = test_rows(42);
    assert_eq!(a, test_rows(42));
    assert_ne!(a, test_rows(43));
    // Pinned from this implementation: a change to the hold-out's draw shows here.
    assert_eq!(&a[..8], PINNED_AG_NEWS_TEST_ROWS);
    // The directory holds one split (test.csv): with a fraction it is the data to split.
    let dir = DatasetSpec {
        train: imdb_lora_testkit::shared::ag_news_dir().unwrap(),
        ..ag_news_spec(42)
    };
    let d = load_dataset(&dir).unwrap();
    assert_eq!(d.test.iter().map(|r| r.row).collect::<Vec<_>>(), a);
    assert_eq!(d.classes.names()[3], "Sci/Tech");
}

const PINNED_AG_NEWS_TEST_ROWS: &[usize] = &[4, 9, 13, 17, 23, 25, 31, 33];

#[test]
fn ag_news_without_a_fraction_asks_for_one() {
    let spec = DatasetSpec {
        test_fraction: None,
        ..ag_news_spec(42)
    };
    let err = load_dataset(&spec).unwrap_err();
    assert!(matches!(err, TableError::NoTestSplit { .. }), "{err}");
    assert!(err.to_string().contains("--test-fraction"), "{err}");
}

// ----- the committed fixtures -----

/// The Hub's `datasets` metadata for a text + ClassLabel dataset.
fn hf_metadata(names: &[&str]) -> String {
    serde_json::json!({
        "info": {"features": {
            "text": {"dtype": "string", "_type": "Value"},
            "label": {"names": names, "_type": "ClassLabel"},
        }}
    })
    .to_string()
}

fn write_parquet(path: &Path, texts: &[&str], labels: &[i64], hf: &str) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", arrow_schema::DataType::Utf8, true),
        Field::new("label", arrow_schema::DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(texts.to_vec())) as ArrayRef,
            Arc::new(Int64Array::from(labels.to_vec())) as ArrayRef,
        ],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "huggingface".into(),
            hf.to_owned(),
        )]))
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

const TOPICS: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];

/// Write every fixture under `root` (the committed ones: `fixtures/table`).
fn write_fixtures(root: &Path) {
    let write = |rel: &str, body: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    // JSON Lines with string labels, train and test; keys in an unusual order.
    let sentiments = [
        ("A warm, funny film.", "positive"),
        ("Dull from start to end.", "negative"),
        ("It was a film.", "neutral"),
        ("I loved every minute.", "positive"),
        ("Two hours I will not get back.", "negative"),
        ("Some parts work, some do not.", "neutral"),
        ("The cast is \"superb\".", "positive"),
        ("Boring\nand long.", "negative"),
        ("Neither good nor bad.", "neutral"),
    ];
    let jsonl = |rows: &[(&str, &str)], first_id: usize| {
        rows.iter()
            .enumerate()
            .map(|(i, (text, label))| {
                format!(
                    "{}\n",
                    serde_json::json!({"id": first_id + i, "label": label, "text": text})
                )
            })
            .collect::<String>()
    };
    write("jsonl/train.jsonl", &jsonl(&sentiments[..6], 0));
    write("jsonl/test.jsonl", &jsonl(&sentiments[6..], 6));
    // A TSV with a header row, integer labels, quoting (a tab and a newline inside a field).
    write(
        "tsv/reviews.tsv",
        "sentence\tlabel\n\
         great acting\t1\n\
         \"a \"\"so-so\"\" plot\twith a tab\nand a newline\"\t0\n\
         awful\t0\n\
         wonderful\t1\n\
         not worth it\t0\n\
         a classic\t1\n",
    );
    // A Hub-sharded parquet dataset: data/train in two shards, data/test in one, ClassLabel names.
    let hf = hf_metadata(&TOPICS);
    write(
        "hub_sharded/README.md",
        "A Hub-shaped dataset: data/<split>-NNNNN-of-NNNNN.parquet, ClassLabel names in the \
         parquet metadata. Written by crates/data/tests/it/table.rs (write_fixtures).\n",
    );
    let shard = |rel: &str, texts: &[&str], labels: &[i64]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        write_parquet(&p, texts, labels, &hf);
    };
    shard(
        "hub_sharded/data/train-00000-of-00002.parquet",
        &["Leaders meet", "Team wins cup", "Shares fall", "New chip"],
        &[0, 1, 2, 3],
    );
    shard(
        "hub_sharded/data/train-00001-of-00002.parquet",
        &[
            "Election held",
            "Record broken",
            "Bank merges",
            "Probe lands",
        ],
        &[0, 1, 2, 3],
    );
    shard(
        "hub_sharded/data/test-00000-of-00001.parquet",
        &["Summit ends", "Coach quits", "Rates rise", "Phone launched"],
        &[0, 1, 2, 3],
    );
}

#[test]
#[ignore = "rewrites fixtures/table; run by hand after changing write_fixtures"]
fn make_table_fixtures() {
    write_fixtures(&fixtures());
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_fixtures_are_what_the_helper_writes() {
    let fresh = tempfile::tempdir().unwrap();
    write_fixtures(fresh.path());
    let committed = fixtures();
    assert_eq!(files_under(fresh.path()), files_under(&committed));
    for rel in files_under(fresh.path()) {
        let (a, b) = (fresh.path().join(&rel), committed.join(&rel));
        if rel.extension().is_some_and(|e| e == "parquet") {
            // Compared by content: the writer's bytes may change with the parquet crate.
            let spec = TableSpec::default();
            let (ta, tb) = (
                read_table(&a, &spec).unwrap(),
                read_table(&b, &spec).unwrap(),
            );
            assert_eq!(ta.rows, tb.rows, "{}", rel.display());
            assert_eq!(
                ta.class_names.map(|n| n.names),
                tb.class_names.map(|n| n.names),
                "{}",
                rel.display()
            );
        } else {
            assert_eq!(
                std::fs::read(&a).unwrap(),
                std::fs::read(&b).unwrap(),
                "{} differs: run the ignored make_table_fixtures",
                rel.display()
            );
        }
    }
}

#[test]
fn jsonl_directory_with_string_labels() {
    let d = load_dataset(&DatasetSpec::new(fixtures().join("jsonl"))).unwrap();
    assert_eq!(d.classes.names(), ["negative", "neutral", "positive"]);
    assert_eq!(d.classes.source(), &NameSource::DistinctStrings);
    assert_eq!(d.classes.raw_labels(), ["negative", "neutral", "positive"]);
    assert_eq!(d.text_columns, ["text"]);
    assert_eq!(d.label_column, "label");
    assert_eq!(
        d.train.iter().map(|r| (r.row, r.label)).collect::<Vec<_>>(),
        [(0, 2), (1, 0), (2, 1), (3, 2), (4, 0), (5, 1)]
    );
    assert_eq!(
        d.test.iter().map(|r| (r.row, r.label)).collect::<Vec<_>>(),
        [(0, 2), (1, 0), (2, 1)]
    );
    assert_eq!(d.test[0].text, "The cast is \"superb\".");
    assert_eq!(d.test[1].text, "Boring\nand long.");
    assert_eq!(d.test_files, [fixtures().join("jsonl/test.jsonl")]);
}

#[test]
fn tsv_with_a_header_and_a_hold_out() {
    let path = fixtures().join("tsv/reviews.tsv");
    let t = read_table(&path, &TableSpec::default()).unwrap();
    assert!(t.header);
    assert_eq!(t.text_columns, ["sentence"]);
    assert_eq!(t.rows.len(), 6);
    assert_eq!(
        t.rows[1].text,
        "a \"so-so\" plot\twith a tab\nand a newline"
    );
    assert_eq!((t.rows[2].row, t.rows[2].line), (2, Some(5)));

    let spec = DatasetSpec {
        test_fraction: Some(1.0 / 3.0),
        ..DatasetSpec::new(&path)
    };
    let d = load_dataset(&spec).unwrap();
    assert_eq!(d.classes.names(), ["0", "1"]);
    assert_eq!(
        (counts(&d.train), counts(&d.test)),
        (vec![2, 2], vec![1, 1])
    );
    assert_eq!(d.test_fraction, Some(1.0 / 3.0));
}

#[test]
fn hub_sharded_parquet_directory_with_classlabel_names() {
    let root = fixtures().join("hub_sharded");
    let d = load_dataset(&DatasetSpec::new(&root)).unwrap();
    assert_eq!(d.classes.names(), TOPICS);
    assert_eq!(
        d.classes.source(),
        &NameSource::ClassLabel(root.join("data/train-00000-of-00002.parquet"))
    );
    assert_eq!(
        d.train_files,
        [
            root.join("data/train-00000-of-00002.parquet"),
            root.join("data/train-00001-of-00002.parquet")
        ]
    );
    // Shards concatenated in order, rows counted on across them.
    assert_eq!(
        d.train
            .iter()
            .map(|r| (r.row, r.text.as_str(), r.label))
            .collect::<Vec<_>>(),
        [
            (0, "Leaders meet", 0),
            (1, "Team wins cup", 1),
            (2, "Shares fall", 2),
            (3, "New chip", 3),
            (4, "Election held", 0),
            (5, "Record broken", 1),
            (6, "Bank merges", 2),
            (7, "Probe lands", 3)
        ]
    );
    assert_eq!(counts(&d.test), [1; 4]);
    // Given names win over the metadata.
    let spec = DatasetSpec {
        table: TableSpec {
            label_names: Some(vec!["w".into(), "s".into(), "b".into(), "t".into()]),
            ..TableSpec::default()
        },
        ..DatasetSpec::new(&root)
    };
    let d = load_dataset(&spec).unwrap();
    assert_eq!(d.classes.names(), ["w", "s", "b", "t"]);
    // A test split and a fraction contradict each other.
    let spec = DatasetSpec {
        test_fraction: Some(0.5),
        ..DatasetSpec::new(&root)
    };
    assert!(matches!(
        load_dataset(&spec),
        Err(TableError::TestAndFraction { .. })
    ));
}

#[test]
fn the_format_can_be_named_for_an_unknown_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.txt");
    std::fs::write(&path, "text\tlabel\nyes\t1\nno\t0\n").unwrap();
    let err = read_table(&path, &TableSpec::default()).unwrap_err();
    assert!(
        matches!(&err, TableError::UnknownExtension { ext, .. } if ext == "txt"),
        "{err}"
    );
    let spec = TableSpec {
        format: Some("tsv".parse().unwrap()),
        ..TableSpec::default()
    };
    let t = read_table(&path, &spec).unwrap();
    assert_eq!(t.format, Format::Tsv);
    assert_eq!(t.rows[1].label, RawLabel::Int(0));
}

#[test]
fn stratified_split_of_a_loaded_table_matches_load_dataset() {
    let path = fixtures().join("tsv/reviews.tsv");
    let spec = DatasetSpec {
        test_fraction: Some(0.5),
        seed: 3,
        ..DatasetSpec::new(&path)
    };
    let d = load_dataset(&spec).unwrap();
    let all: Vec<Review> = {
        let mut v: Vec<Review> = d.train.iter().chain(&d.test).cloned().collect();
        v.sort_by_key(|r| r.row);
        v
    };
    let (train, test) = stratified_split(all, 0.5, 3).unwrap();
    assert_eq!((train, test), (d.train, d.test));
}

// ----- bad data: each error names the file, the row (and line) and the column -----

/// Write `body` as `name` in a fresh directory and load it with `spec` (train file, fraction 0.5).
fn load_bad(name: &str, body: &str, table: TableSpec) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    let spec = DatasetSpec {
        test_fraction: Some(0.5),
        table,
        ..DatasetSpec::new(&path)
    };
    let err = load_dataset(&spec).unwrap_err();
    (dir, path, err.to_string())
}

#[test]
fn bad_data_gets_errors_naming_file_row_and_column() {
    let p = |path: &Path| path.display().to_string();
    let cases: &[(&str, &str, &str)] = &[
        // no such column (lists the columns found)
        (
            "a.csv",
            "text,stars\nx,1\n",
            r#": cannot tell which column holds the label: none is named label, labels or class; name it explicitly; columns found: "text", "stars""#,
        ),
        // one class only
        (
            "b.csv",
            "text,label\nx,1\ny,1\n",
            r#": label column "label" holds one class only (1, all 2 rows); a classifier needs at least two"#,
        ),
        // empty text
        (
            "c.jsonl",
            "{\"text\": \"x\", \"label\": 0}\n{\"text\": \"  \", \"label\": 1}\n",
            r#", row 1 (line 2), column "text": the text is empty or only whitespace"#,
        ),
        // a label column of floats
        (
            "d.csv",
            "text,label\nx,0.5\n",
            r#", row 0 (line 2), column "label": label 0.5 is a floating-point number"#,
        ),
        // mixed int and string labels
        (
            "e.jsonl",
            "{\"text\": \"x\", \"label\": 0}\n{\"text\": \"y\", \"label\": \"pos\"}\n",
            r#", row 1 (line 2), column "label": label "pos" is a string, but the labels before it are integers"#,
        ),
        // a missing value
        (
            "f.jsonl",
            "{\"text\": \"x\", \"label\": 0}\n{\"text\": \"y\"}\n",
            r#", row 1 (line 2), column "label": missing value, expected a class id or name"#,
        ),
        // a malformed CSV line
        (
            "g.csv",
            "text,label\nx,0\ny,1,2\n",
            ", line 3 (row 1): malformed CSV: found 3 fields, expected 2 as in the first row",
        ),
        // an unknown extension
        (
            "h.xlsx",
            "whatever",
            r#": unknown data file extension "xlsx"; expected .parquet, .csv, .tsv/.tab or .jsonl/.ndjson"#,
        ),
    ];
    for (name, body, want) in cases {
        let (_dir, path, msg) = load_bad(name, body, TableSpec::default());
        assert!(
            msg.starts_with(&format!("{}{want}", p(&path))),
            "{name}:\n  got  {msg}\n  want {}{want}",
            p(&path)
        );
    }
    // A column asked for by name that is not there.
    let (_dir, path, msg) = load_bad(
        "i.csv",
        "text,label\nx,0\n",
        TableSpec {
            label: Some(Column::Name("stars".into())),
            ..TableSpec::default()
        },
    );
    assert_eq!(
        msg,
        format!(
            r#"{}: no column "stars"; columns found: "text", "label""#,
            p(&path)
        )
    );
    // A header that names nothing recognisable is read as data; the error shows it.
    let (_dir, path, msg) = load_bad("j.csv", "body,stars\nx,1\n", TableSpec::default());
    assert!(
        msg.starts_with(&format!(
            r#"{}: cannot tell which column holds the label: none is named label, labels or class (no header row detected: the first row, "body", "stars", names no column"#,
            p(&path)
        )),
        "{msg}"
    );
}

#[test]
fn a_test_label_unseen_in_training_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.csv");
    let test = dir.path().join("test.csv");
    std::fs::write(&train, "text,label\na,pos\nb,neg\n").unwrap();
    std::fs::write(&test, "text,label\nc,neg\nd,meh\n").unwrap();
    let err = load_dataset(&DatasetSpec::new(dir.path())).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            r#"{}, row 1 (line 3), column "label": label "meh" does not occur in the training data ({}); classes trained on: "neg", "pos""#,
            test.display(),
            train.display()
        )
    );
}
