//! End-to-end tests of `render_all` and friends on synthetic metrics: the
//! PNGs decode to non-trivial pictures, the SVGs carry titles and value
//! labels, `report.md` has the expected rows, and bad inputs name the file.

use std::path::{Path, PathBuf};

use imdb_lora_metrics::MetricsFile;
use imdb_lora_report::{BAR_TITLE, HEIGHT, LINE_TITLE, ReportError, WIDTH, render_all};
use imdb_lora_testkit::metrics::{balanced_run, binary_file};

/// A two-class (neg, pos) run of `per_epoch` (tp, tn) results.
fn sample(per_epoch: &[(u64, u64)]) -> MetricsFile {
    binary_file(balanced_run(per_epoch))
}

fn one_epoch() -> MetricsFile {
    sample(&[(437, 416)])
}

fn three_epochs() -> MetricsFile {
    sample(&[(437, 416), (451, 428), (440, 447)])
}

fn write_metrics(dir: &Path, m: &MetricsFile) -> PathBuf {
    let path = dir.join("metrics.json");
    m.write_atomic(&path).unwrap();
    path
}

struct Png {
    width: u32,
    height: u32,
    /// RGB triples, row-major.
    pixels: Vec<[u8; 3]>,
}

/// Checks the PNG signature and IHDR by hand, then decodes it fully.
fn read_png(path: &Path) -> Png {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: PNG signature",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |r: std::ops::Range<usize>| u32::from_be_bytes(bytes[r].try_into().unwrap());
    let (width, height) = (be(16..20), be(20..24));

    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (width, height));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Png {
        width,
        height,
        pixels,
    }
}

/// A real chart: right size, anti-aliased text and several colours, a
/// meaningful amount of ink, text in the title band, and a clear margin so
/// nothing is clipped at the canvas edge.
pub(crate) fn assert_chart_png(path: &Path) {
    let png = read_png(path);
    assert_eq!(
        (png.width, png.height),
        (WIDTH, HEIGHT),
        "{}",
        path.display()
    );

    let distinct: std::collections::HashSet<[u8; 3]> = png.pixels.iter().copied().collect();
    assert!(
        distinct.len() > 100,
        "{}: only {} distinct colours",
        path.display(),
        distinct.len()
    );
    let white = [255u8, 255, 255];
    let ink = png.pixels.iter().filter(|&&p| p != white).count();
    let fraction = ink as f64 / png.pixels.len() as f64;
    assert!(
        (0.03..0.6).contains(&fraction),
        "{}: {:.1}% non-white pixels",
        path.display(),
        100.0 * fraction
    );

    let w = png.width as usize;
    let at = |x: usize, y: usize| png.pixels[y * w + x];
    let dark = |p: [u8; 3]| p.iter().all(|&c| c < 100);
    let title_ink = (12..46)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| dark(at(x, y)))
        .count();
    assert!(
        title_ink > 500,
        "{}: title band has {title_ink} dark pixels",
        path.display()
    );

    let h = png.height as usize;
    const MARGIN: usize = 4;
    for y in 0..h {
        for x in 0..w {
            let on_border = x < MARGIN || y < MARGIN || x >= w - MARGIN || y >= h - MARGIN;
            if on_border {
                assert_eq!(
                    at(x, y),
                    white,
                    "{}: ink at edge pixel ({x}, {y})",
                    path.display()
                );
            }
        }
    }
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Whether the SVG has a `<text>` element whose whole content is `text`
/// (plotters writes the content on its own line).
pub(crate) fn svg_has_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">\n{text}\n</text>"))
}

#[test]
fn renders_everything_for_one_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_epoch();
    let input = write_metrics(dir.path(), &m);
    let out_dir = dir.path().join("out");
    let out = render_all(&input, &out_dir).unwrap();

    assert_eq!(out.bar_png, out_dir.join("images/bar_chart.png"));
    assert_eq!(out.line_svg, out_dir.join("images/line_chart.svg"));
    assert_eq!(out.report_md, out_dir.join("report.md"));
    assert_chart_png(&out.bar_png);
    assert_chart_png(&out.line_png);

    let bar = read(&out.bar_svg);
    assert!(bar.starts_with("<svg"), "{}", &bar[..40.min(bar.len())]);
    // Baseline accuracy 0.510 and F1 0.662; epoch 1 accuracy 0.853, F1 0.856.
    for label in [
        BAR_TITLE, "0.510", "0.662", "0.853", "0.856", "Accuracy", "F1",
    ] {
        assert!(svg_has_text(&bar, label), "bar SVG lacks {label}");
    }
    let line = read(&out.line_svg);
    for label in [
        LINE_TITLE,
        "0.853",
        "0.856",
        "Epoch",
        "1",
        "Baseline accuracy before fine-tuning (0.510)",
    ] {
        assert!(svg_has_text(&line, label), "line SVG lacks {label}");
    }

    let md = read(&out.report_md);
    for row in [
        "| Baseline (before fine-tuning) | 0.5100 | 0.6621 |",
        "| Epoch 1 | 0.8530 | 0.8560 |",
        "| Trainable share | 0.270 % |",
        "| Total | 109,779,460 |",
        "| **neg** | **416 (83.2 %)** | 84 (16.8 %) | 500 |",
        "| **pos** | 63 (12.6 %) | **437 (87.4 %)** | 500 |",
        "| neg | 500 |",
        "| LoRA target modules | `query`, `value` |",
        "![Accuracy and F1: baseline vs fine-tuned after epoch 1](images/bar_chart.png)",
        "(images/line_chart.png)",
        "| Epoch 1 training | 2,000 | 95.5 s (1 min 36 s) | 20.9 samples/s |",
    ] {
        assert!(md.contains(row), "report.md lacks `{row}`:\n{md}");
    }
}

#[test]
fn renders_everything_for_three_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let m = three_epochs();
    let input = write_metrics(dir.path(), &m);
    let out = render_all(&input, dir.path()).unwrap();
    assert_chart_png(&out.bar_png);
    assert_chart_png(&out.line_png);

    let line = read(&out.line_svg);
    for e in &m.run.epochs {
        for v in [e.eval.accuracy, e.eval.f1] {
            let label = format!("{v:.3}");
            assert!(svg_has_text(&line, &label), "line SVG lacks {label}");
        }
    }
    let md = read(&out.report_md);
    for epoch in 1..=3 {
        assert!(md.contains(&format!("| Epoch {epoch} | ")), "{md}");
        assert!(
            md.contains(&format!("| Epoch {epoch} evaluation | 1,000 |")),
            "{md}"
        );
    }
    assert!(md.contains("## Confusion matrix (epoch 3, final)"));
    assert!(
        md.contains("| Change, epoch 3 vs baseline | +0.3770 |"),
        "{md}"
    );
}

#[test]
fn bar_chart_compares_the_final_epoch_not_the_best() {
    let dir = tempfile::tempdir().unwrap();
    // Epoch 2 is best (accuracy 0.879); epoch 3 is final (0.887 would be
    // best in three_epochs(), so use a dip instead).
    let m = sample(&[(437, 416), (451, 428), (430, 420)]);
    let png = dir.path().join("bar.png");
    let svg = dir.path().join("bar.svg");
    imdb_lora_report::bar_chart(&m, &png, &svg).unwrap();
    let text = read(&svg);
    assert!(svg_has_text(&text, "0.850"), "final accuracy missing");
    assert!(!svg_has_text(&text, "0.879"), "best epoch's accuracy drawn");
    assert!(svg_has_text(&text, "LoRA fine-tuned (after epoch 3 of 3)"));
}

#[test]
fn rendering_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let m = three_epochs();
    let (a_png, a_svg) = (dir.path().join("a.png"), dir.path().join("a.svg"));
    let (b_png, b_svg) = (dir.path().join("b.png"), dir.path().join("b.svg"));
    imdb_lora_report::line_chart(&m, &a_png, &a_svg).unwrap();
    imdb_lora_report::line_chart(&m, &b_png, &b_svg).unwrap();
    assert_eq!(
        std::fs::read(&a_png).unwrap(),
        std::fs::read(&b_png).unwrap()
    );
    assert_eq!(read(&a_svg), read(&b_svg));
}

#[test]
fn many_epochs_render_without_value_labels() {
    let dir = tempfile::tempdir().unwrap();
    let per_epoch: Vec<(u64, u64)> = (0..20).map(|i| (420 + i, 410 + i)).collect();
    let m = sample(&per_epoch);
    let (png, svg) = (dir.path().join("l.png"), dir.path().join("l.svg"));
    imdb_lora_report::line_chart(&m, &png, &svg).unwrap();
    assert_chart_png(&png);
    let text = read(&svg);
    let last = m.run.epochs[19].eval.accuracy;
    assert!(svg_has_text(&text, LINE_TITLE));
    assert!(
        !svg_has_text(&text, &format!("{last:.3}")),
        "labels drawn for 20 epochs"
    );
}

#[test]
fn long_run_descriptions_stay_inside_the_canvas() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = three_epochs();
    m.run.config.model =
        "/home/someone/checkpoints/google-bert/bert-large-uncased-whole-word-masking-finetuned"
            .into();
    m.run.config.target_modules = [
        "query",
        "key",
        "value",
        "attention.output.dense",
        "intermediate.dense",
    ]
    .map(String::from)
    .to_vec();
    let input = write_metrics(dir.path(), &m);
    let out = render_all(&input, dir.path()).unwrap();
    assert_chart_png(&out.bar_png);
    assert_chart_png(&out.line_png);
    // The subtitle was shortened rather than dropped.
    assert!(read(&out.bar_svg).contains("/home/someone/checkpoints"));
}

#[test]
fn missing_metrics_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("absent-metrics.json");
    let err = render_all(&input, dir.path()).unwrap_err();
    assert!(matches!(err, ReportError::Metrics(_)), "{err:?}");
    assert!(err.to_string().contains("absent-metrics.json"), "{err}");
    assert!(
        !dir.path().join("images").exists(),
        "outputs created on error"
    );
}

#[test]
fn malformed_metrics_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("broken.json");
    std::fs::write(&input, "{\"schema_version\": 1,\n \"config\": [1, 2,").unwrap();
    let err = render_all(&input, dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("broken.json") && msg.contains("line 2"),
        "{msg}"
    );
}

#[test]
fn inconsistent_metrics_file_is_an_error_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_metrics(dir.path(), &one_epoch());
    let mut v: serde_json::Value = serde_json::from_str(&read(&input)).unwrap();
    v["epochs"][0]["eval"]["accuracy"] = 1.2.into();
    std::fs::write(&input, v.to_string()).unwrap();
    let err = render_all(&input, dir.path()).unwrap_err();
    let chain = format!("{err} / {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("metrics.json"), "{chain}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("epochs[0].eval.accuracy"), "{source}");
}

#[test]
fn metrics_without_epochs_are_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_metrics(dir.path(), &sample(&[]));
    let err = render_all(&input, dir.path()).unwrap_err();
    assert!(matches!(err, ReportError::NoEpochs { .. }), "{err:?}");
    assert!(err.to_string().contains("metrics.json"), "{err}");

    let err = imdb_lora_report::write_report(&sample(&[]), dir.path(), true).unwrap_err();
    assert!(err.to_string().contains("report.md"), "{err}");
    assert!(!dir.path().join("report.md").exists());
}

#[test]
fn unwritable_output_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_metrics(dir.path(), &one_epoch());
    // A regular file where the output directory should be.
    let blocker = dir.path().join("out");
    std::fs::write(&blocker, "not a directory").unwrap();
    let err = render_all(&input, &blocker).unwrap_err();
    assert!(matches!(err, ReportError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("out"), "{err}");
}

#[test]
fn markdown_escapes_table_breaking_text() {
    let mut m = one_epoch();
    m.run.config.data = "data/imdb|v2".into();
    m.run.config.backend = "nd|array".into();
    let md = imdb_lora_report::render_markdown(&m, true).unwrap();
    assert!(md.contains("| Data | `data/imdb\\|v2` |"), "{md}");
    assert!(md.contains("| Backend | nd\\|array |"), "{md}");
}

#[test]
fn the_end_of_run_summary_says_what_changed_and_how_long_it_took() {
    let summary = imdb_lora_report::render_summary(&one_epoch()).unwrap();
    assert_eq!(
        summary,
        "Fine-tuned bert-base-uncased on stanfordnlp/imdb (2 classes: neg, pos): 1 of 1 epochs, \
         2,000 training / 1,000 test examples, 115.5 s (1 min 56 s) of training and evaluation.\n  \
         accuracy  0.5100 → 0.8530  (+0.3430)\n  \
         F1        0.6621 → 0.8560  (+0.1940)"
    );
    // Nothing to compare before an epoch has completed.
    assert_eq!(imdb_lora_report::render_summary(&sample(&[])), None);
}
