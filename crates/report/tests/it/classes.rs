//! Reports of runs over named classes (every run): the classes named in report.md and in
//! every chart, the per-class F1 chart and the confusion heat map; two classes (IMDb's neg and
//! pos) the same way as four; files of the old binary layout still render.

use std::path::{Path, PathBuf};

use imdb_lora_metrics::{ClassConfusion, ClassMetrics, EvalMetrics, MetricsFile, RunClasses};
use imdb_lora_report::{
    BAR_TITLE, CLASS_F1_TITLE, HEATMAP_TITLE, MAX_CHART_CLASSES, ReportError, render_all,
};
use imdb_lora_testkit::metrics::{AG_NEWS_CLASSES, balanced_run, binary_file, four_class_run};

use crate::render::{assert_chart_png, read, svg_has_text};

fn write_file(dir: &Path, file: &MetricsFile) -> PathBuf {
    let path = dir.join("metrics.json");
    file.write_atomic(&path).unwrap();
    path
}

#[test]
fn a_two_class_run_is_reported_as_any_other_with_its_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = binary_file(balanced_run(&[(437, 416), (451, 428), (440, 447)]));
    let input = write_file(dir.path(), &file);
    let out = render_all(&input, dir.path()).unwrap();
    let charts = out
        .class_charts
        .expect("two classes get the class charts too");
    assert_chart_png(&charts.f1_png);
    assert_chart_png(&charts.heatmap_png);
    assert!(svg_has_text(&read(&out.bar_svg), BAR_TITLE));
    assert!(read(&out.bar_svg).contains("1,000 test examples, 2 classes"));
    let md = read(&out.report_md);
    for row in [
        "# Text classification: LoRA fine-tuning report",
        "(2 classes: `neg`, `pos`;",
        "| Evaluation | Accuracy | F1 | Weighted F1 | Precision | Recall | Test loss | Train loss |",
        "Positive class: `pos` (label 1)",
        "| True \\ Predicted | neg | pos | Support |",
        "| **neg** | **447 (89.4 %)** | 53 (10.6 %) | 500 |",
        "| **pos** | 60 (12.0 %) | **440 (88.0 %)** | 500 |",
    ] {
        assert!(md.contains(row), "report.md lacks `{row}`:\n{md}");
    }
    // The file-level entry point renders the same text.
    let again = MetricsFile::read(&input).unwrap();
    assert_eq!(imdb_lora_report::render_markdown(&again, true).unwrap(), md);
}

#[test]
fn a_real_schema_1_file_still_renders() {
    // Written by an older version (binary layout, no `classes`): read as IMDb's neg and pos.
    let input = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results/gpu_h200_minilm_rust_metrics.json");
    let dir = tempfile::tempdir().unwrap();
    let out = render_all(&input, dir.path()).unwrap();
    assert_chart_png(&out.bar_png);
    let md = read(&out.report_md);
    assert!(
        md.starts_with("# Text classification: LoRA fine-tuning report"),
        "{md}"
    );
    assert!(
        md.contains("| **neg** |") && md.contains("| **pos** |"),
        "{md}"
    );
}

#[test]
fn a_real_schema_2_file_from_before_validation_splits_still_renders() {
    // AG News, written before schema 3: no validation split, so the last epoch is "after".
    let input = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results/ag_news_minilm/metrics.json");
    let file = imdb_lora_metrics::MetricsFile::read(&input).unwrap();
    assert_eq!(file.run.schema_version, imdb_lora_metrics::SCHEMA_VERSION);
    let saved = file.saved().unwrap();
    assert_eq!(saved.epoch, file.run.epochs.len());
    assert!(!saved.on_validation && file.run.selection.is_none());
    let dir = tempfile::tempdir().unwrap();
    let out = render_all(&input, dir.path()).unwrap();
    assert_chart_png(&out.bar_png);
    let md = read(&out.report_md);
    assert!(
        md.contains("| **Sci/Tech** |") && !md.contains("validation"),
        "{md}"
    );
}

#[test]
fn a_four_class_run_renders_with_the_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = four_class_run(3);
    let input = write_file(dir.path(), &file);
    let out = render_all(&input, &dir.path().join("out")).unwrap();
    let charts = out.class_charts.clone().unwrap();
    assert_eq!(
        charts.heatmap_png,
        dir.path().join("out/images/confusion_heatmap.png")
    );
    for png in [
        &out.bar_png,
        &out.line_png,
        &charts.f1_png,
        &charts.heatmap_png,
    ] {
        assert_chart_png(png);
    }

    let bar = read(&out.bar_svg);
    assert!(svg_has_text(&bar, BAR_TITLE));
    assert!(svg_has_text(&bar, "Macro-F1"));
    assert!(bar.contains("1,600 test examples, 4 classes"));
    let line = read(&out.line_svg);
    assert!(svg_has_text(
        &line,
        "Text classification: test accuracy and Macro-F1 by epoch"
    ));

    let classes = &file.classes;
    let last = classes.final_epoch().unwrap();
    let f1 = read(&charts.f1_svg);
    assert!(svg_has_text(&f1, CLASS_F1_TITLE));
    for (i, name) in AG_NEWS_CLASSES.iter().enumerate() {
        assert!(svg_has_text(&f1, name), "F1 chart lacks {name}");
        for value in [classes.baseline.per_class[i].f1, last.per_class[i].f1] {
            let label = format!("{value:.3}");
            assert!(svg_has_text(&f1, &label), "F1 chart lacks {label}");
        }
    }

    let heat = read(&charts.heatmap_svg);
    assert!(svg_has_text(&heat, HEATMAP_TITLE));
    assert!(svg_has_text(&heat, "True class"));
    assert!(svg_has_text(&heat, "Predicted class"));
    assert!(svg_has_text(&heat, "100 %"));
    for name in AG_NEWS_CLASSES {
        assert!(svg_has_text(&heat, name), "heat map lacks {name}");
    }
    // Epoch 3: World gets 376 of 400 right; its 24 errors go 8 to each other class.
    assert_eq!(last.confusion[0], [376, 8, 8, 8]);
    assert!(svg_has_text(&heat, "376"));
    assert!(svg_has_text(&heat, "94.0 %"));

    let md = read(&out.report_md);
    for row in [
        "# Text classification: LoRA fine-tuning report",
        "(4 classes: `World`, `Sports`, `Business`, `Sci/Tech`; 6,000 training / 1,600 test examples, 3 of 3 epochs completed)",
        "| Classes | 4: `World`, `Sports`, `Business`, `Sci/Tech` |",
        "| Evaluation | Accuracy | Macro-F1 | Weighted F1 | Precision | Recall | Test loss | Train loss |",
        "## Per-class metrics (baseline vs epoch 3, final)",
        "| Sci/Tech | 400 | 0.3333 | ",
        "| **Macro average** | 1,600 | ",
        "| True \\ Predicted | World | Sports | Business | Sci/Tech | Support |",
        "| **World** | **376 (94.0 %)** | 8 (2.0 %) | 8 (2.0 %) | 8 (2.0 %) | 400 |",
        "![F1 of each class: baseline vs fine-tuned after epoch 3](images/class_f1_chart.png)",
        "(images/confusion_heatmap.png)",
        "![Accuracy and macro-F1: baseline vs fine-tuned after epoch 3](images/bar_chart.png)",
        "[images/confusion_heatmap.svg](images/confusion_heatmap.svg)",
        "| Epoch 3 evaluation | 1,600 |",
    ] {
        assert!(md.contains(row), "report.md lacks `{row}`:\n{md}");
    }
    assert!(!md.contains("IMDb"), "{md}");
    assert!(!md.contains("| **negative** |"), "{md}");
}

#[test]
fn class_charts_render_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let file = four_class_run(2);
    for draw in [
        imdb_lora_report::class_f1_chart,
        imdb_lora_report::confusion_heatmap,
    ] {
        let (a_png, a_svg) = (dir.path().join("a.png"), dir.path().join("a.svg"));
        let (b_png, b_svg) = (dir.path().join("b.png"), dir.path().join("b.svg"));
        draw(&file, &a_png, &a_svg).unwrap();
        draw(&file, &b_png, &b_svg).unwrap();
        assert_eq!(
            std::fs::read(&a_png).unwrap(),
            std::fs::read(&b_png).unwrap()
        );
        assert_eq!(read(&a_svg), read(&b_svg));
    }
}

/// A one-epoch run over `names`, with class `c` right on `right(c)` of its 10 test items
/// (the rest predicted as the next class).
fn many_class_run(names: &[String], right: impl Fn(usize) -> u64) -> MetricsFile {
    let n = names.len();
    let rows: Vec<Vec<u64>> = (0..n)
        .map(|c| {
            let mut row = vec![0; n];
            row[c] = right(c);
            row[(c + 1) % n] += 10 - right(c);
            row
        })
        .collect();
    let matrix = ClassConfusion::from_rows(&rows).unwrap();
    let baseline_rows: Vec<Vec<u64>> = (0..n)
        .map(|c| {
            let mut row = vec![0; n];
            row[0] = 10;
            let _ = c;
            row
        })
        .collect();
    let baseline_matrix = ClassConfusion::from_rows(&baseline_rows).unwrap();
    let mut run = balanced_run(&[(450, 450)]);
    run.config.test_n = 10 * n;
    run.baseline = EvalMetrics::from_class_confusion(&baseline_matrix, 2.0, 1.0);
    run.epochs[0].eval = EvalMetrics::from_class_confusion(&matrix, 0.5, 1.0);
    MetricsFile::new(
        run,
        RunClasses {
            baseline: ClassMetrics::from_confusion(names, &baseline_matrix).unwrap(),
            epochs: vec![ClassMetrics::from_confusion(names, &matrix).unwrap()],
            test: None,
        },
    )
}

#[test]
fn many_classes_and_long_names_stay_inside_the_canvas() {
    let dir = tempfile::tempdir().unwrap();
    for n in [3, 20, 60] {
        let names: Vec<String> = (0..n)
            .map(|i| format!("a rather long class name number {i}"))
            .collect();
        let file = many_class_run(&names, |c| (c % 10) as u64 + 1);
        let out_dir = dir.path().join(n.to_string());
        let input = write_file(dir.path(), &file);
        let out = render_all(&input, &out_dir).unwrap();
        let charts = out.class_charts.unwrap();
        assert_chart_png(&charts.f1_png);
        assert_chart_png(&charts.heatmap_png);
        let heat = read(&charts.heatmap_svg);
        // Names are cut to fit, not dropped.
        assert!(heat.contains("a rather"), "{n} classes");
        assert!(heat.contains('…'), "{n} classes");
    }
}

#[test]
fn too_many_classes_get_tables_but_no_class_charts() {
    let dir = tempfile::tempdir().unwrap();
    let n = MAX_CHART_CLASSES + 1;
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let file = many_class_run(&names, |_| 9);
    let input = write_file(dir.path(), &file);
    let out = render_all(&input, dir.path()).unwrap();
    assert_eq!(out.class_charts, None);
    assert!(!dir.path().join("images/class_f1_chart.png").exists());
    assert_chart_png(&out.bar_png);
    let md = read(&out.report_md);
    assert!(
        md.contains("(No per-class chart or heat map: 101 classes are more than the 100"),
        "{md}"
    );
    assert!(md.contains(&format!("| c{} | 10 |", n - 1)), "{md}");
    assert!(!md.contains("class_f1_chart"), "{md}");
}

#[test]
fn inconsistent_class_metrics_are_an_error_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(dir.path(), &four_class_run(1));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&input).unwrap()).unwrap();
    v["classes"]["epochs"][0]["per_class"][1]["recall"] = 0.99.into();
    std::fs::write(&input, v.to_string()).unwrap();
    let err = render_all(&input, dir.path()).unwrap_err();
    assert!(matches!(err, ReportError::Metrics(_)), "{err:?}");
    assert!(err.to_string().contains("metrics.json"), "{err}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.contains("classes.epochs[0].per_class[1].recall"),
        "{source}"
    );
    assert!(!dir.path().join("images").exists());
}

#[test]
fn a_class_with_few_test_examples_is_pointed_out_under_the_per_class_table() {
    let mut file = four_class_run(1);
    let md = imdb_lora_report::render_markdown(&file, false).unwrap();
    assert!(!md.contains("Few examples"), "{md}");
    file.classes.epochs[0].per_class[2].support = 7;
    let md = imdb_lora_report::render_markdown(&file, false).unwrap();
    assert!(
        md.contains("**Few examples:** `Business` (7) has fewer than 10 test examples"),
        "{md}"
    );
}
