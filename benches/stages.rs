//! Per-stage timings of the verify pipeline: `cargo bench --bench stages`.
//!
//! Small sample sizes on purpose: the whole run takes about a minute on 2 cores. Real-image and
//! model benches are skipped with a message when the shared data or the models are absent.
//! Paths: `IDVERIFY_MODELS_DIR` (default `./models`) and `IDVERIFY_SHARED_DATA` (default
//! `../shared/data`), both relative to the workspace root.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use idverify::imaging::{self, ImageLimits};
use idverify::verdict::{self, DetectionSummary, DocumentSummary, MatchSummary};
use idverify_testkit::{models_dir, shared_data};
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

/// Same limits as the embedded defaults (config/default.toml).
const LIMITS: ImageLimits = ImageLimits { max_bytes: 15_000_000, max_pixels: 50_000_000 };

/// The selfie (about 1 MP) and the MRZ page used by the engine benches.
const SELFIE: &str = "faces/dev/barack_obama/ageitgey-face_recognition__examples_obama.jpg";
const MRZ_PAGE: &str = "mrz_docs/dev/konstantint-PassportEye__passporteye_mrz_testdata_100_pass-uto.jpg";
const PHONE_PAGE: &str = "mrz_docs/dev/konstantint-PassportEye__passporteye_mrz_testdata_100_pass-lux.jpg";
const PDF417: &str = "pdf417/dev/zxing-zxing__pdf417-1__03.png";

/// A real image from the shared data, or `None` (with a message) when it is absent.
fn shared_image(rel: &str) -> Option<RgbImage> {
    let path = shared_data().join(rel);
    match std::fs::read(&path) {
        Ok(bytes) => match imaging::decode(&bytes, LIMITS) {
            Ok(img) => Some(img),
            Err(_) => image::load_from_memory(&bytes).ok().map(|i| i.into_rgb8()),
        },
        Err(_) => {
            eprintln!("skipping: {} not found (set IDVERIFY_SHARED_DATA)", path.display());
            None
        }
    }
}

fn models_present(files: &[&str]) -> bool {
    let dir = models_dir();
    let missing: Vec<_> = files.iter().filter(|f| !dir.join(f).is_file()).collect();
    if missing.is_empty() {
        true
    } else {
        eprintln!("skipping: models {missing:?} not in {} (run `make models`)", dir.display());
        false
    }
}

/// A photo-like synthetic picture (smooth gradients plus fine texture), so the JPEG has a
/// realistic amount of entropy for the decoder.
fn synthetic_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut seed: u32 = 0x9E37_79B9;
    let img = RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed & 0x1F) as i32 - 16;
        let base = |v: u32, period: u32| ((v % period) * 255 / period) as i32;
        let px = |c: i32| (c + noise).clamp(0, 255) as u8;
        image::Rgb([px(base(x, 517)), px(base(y, 389)), px(base(x + y, 733))])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).expect("encode jpeg");
    out
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_jpeg");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (label, w, h) in [("1MP", 1155, 866), ("2MP", 1632, 1224), ("12MP", 4000, 3000)] {
        let jpeg = synthetic_jpeg(w, h);
        group.bench_with_input(BenchmarkId::from_parameter(label), &jpeg, |b, jpeg| {
            b.iter(|| imaging::decode(black_box(jpeg), LIMITS).expect("decode"))
        });
    }
    group.finish();
}

fn bench_face(c: &mut Criterion) {
    if !models_present(&["face_detection_yunet_2023mar.onnx", "dlib_face_recognition_resnet_v1.onnx"]) {
        return;
    }
    let Some(selfie) = shared_image(SELFIE) else { return };
    // Same session count as the server defaults (config/default.toml).
    let cfg = idverify_face::FaceEngineConfig { models_dir: models_dir(), sessions: 2, ..Default::default() };
    let engine = match idverify_face::FaceEngine::load(&cfg) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("skipping face benches: {e}");
            return;
        }
    };
    let faces = engine.detect(&selfie).expect("detect");
    let Some(face) = faces.first().cloned() else {
        eprintln!("skipping embed bench: no face found in {SELFIE}");
        return;
    };
    let mut group = c.benchmark_group("face");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    group.bench_function("detect_1MP", |b| b.iter(|| engine.detect(black_box(&selfie)).expect("detect")));
    group.bench_function("align_embed", |b| {
        b.iter(|| engine.embed(black_box(&selfie), &face).expect("embed"))
    });
    group.finish();
}

fn bench_document(c: &mut Criterion) {
    let today = chrono::Utc::now().date_naive();
    let mut group = c.benchmark_group("document");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    if models_present(&[idverify_document::DET_MODEL, idverify_document::REC_MODEL]) {
        let cfg = idverify_document::DocumentEngineConfig {
            models_dir: models_dir(),
            sessions: 2,
            ..Default::default()
        };
        match idverify_document::DocumentEngine::load(&cfg) {
            Ok(engine) => {
                for (label, rel) in [("mrz_scan_793x536", MRZ_PAGE), ("mrz_scan_1600x1200", PHONE_PAGE)] {
                    let Some(page) = shared_image(rel) else { continue };
                    let scan =
                        engine.scan(&page, idverify_document::RequestedType::Auto, today).expect("scan");
                    if scan.error.is_some() {
                        eprintln!("note: {rel} did not read cleanly; timing the failing path");
                    }
                    group.bench_function(label, |b| {
                        b.iter(|| {
                            engine
                                .scan(black_box(&page), idverify_document::RequestedType::Auto, today)
                                .expect("scan")
                        })
                    });
                }
            }
            Err(e) => eprintln!("skipping MRZ benches: {e}"),
        }
    }
    bench_card_fronts(&mut group, today);
    if let Some(barcode) = shared_image(PDF417) {
        if idverify_document::barcode::decode_pdf417(&barcode).is_none() {
            eprintln!("note: {PDF417} did not decode; timing the failing path");
        }
        group.bench_function("pdf417_decode", |b| {
            b.iter(|| idverify_document::barcode::decode_pdf417(black_box(&barcode)))
        });
    }
    group.finish();
}

/// A US and an EU licence front (synthetic, photographed: `scripts/synth_fronts.py`) scanned as a
/// `drivers_license`, next to the MRZ scans above: issue 16 compares their CPU.
fn bench_card_fronts(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    today: chrono::NaiveDate,
) {
    if !models_present(&[idverify_document::DET_MODEL, idverify_document::VIZ_REC_MODEL]) {
        return;
    }
    let Some((_dir, fronts)) = idverify_testkit::fronts::generate(2, false) else { return };
    let cfg = idverify_document::DocumentEngineConfig {
        models_dir: models_dir(),
        sessions: 1,
        ..Default::default()
    };
    let engine = match idverify_document::DocumentEngine::load(&cfg) {
        Ok(engine) => engine,
        Err(e) => return eprintln!("skipping card front benches: {e}"),
    };
    let licence = idverify_document::RequestedType::DriversLicense;
    for front in &fronts {
        let page = image::open(&front.image).expect("front decodes").to_rgb8();
        let label = format!("card_front_scan_{}_{}x{}", front.get("layout"), page.width(), page.height());
        group.bench_function(label, |b| {
            b.iter(|| engine.scan(black_box(&page), licence, today).expect("scan"))
        });
    }
}

fn bench_verdict(c: &mut Criterion) {
    let document = DocumentSummary { read: true, checks_passed: true, confidence: 96.5 };
    let detection = DetectionSummary { face_detected: true, confidence: 92.1 };
    let matching = MatchSummary { compared: true, is_match: false, confidence: 12.0 };
    c.bench_function("verdict_decide", |b| {
        b.iter(|| verdict::decide(black_box(document), black_box(detection), black_box(matching)))
    });
}

criterion_group!(benches, bench_decode, bench_face, bench_document, bench_verdict);
criterion_main!(benches);
