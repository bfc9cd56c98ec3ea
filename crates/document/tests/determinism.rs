//! The same input gives the same output, also across processes: every test here re-runs itself in
//! several child processes (each with its own hash-map seeds, thread ids and allocator layout) and
//! demands that every child prints the same lines. Hash-map iteration order, for one, changes only
//! from one process to the next, so comparing two calls in one process would not catch it.
//! The tests skip (with a message) when the models or the shared data are absent.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use idverify_document::{DocumentEngine, DocumentEngineConfig, RequestedType, barcode};
use idverify_testkit::processes::{assert_same_in_every_process, emit, fnv, is_child};
use image::codecs::jpeg::JpegEncoder;
use image::{RgbImage, imageops::FilterType};

/// MRZ scans are slow in a debug build: every third dev image, in manifest order.
const MRZ_STRIDE: usize = 3;

/// The package root at run time (with a shared target dir, the compile-time one may be stale).
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn shared_manifest(rel: &str) -> Option<PathBuf> {
    let path = manifest_dir().join("../../../shared/data").join(rel);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("SKIP: {} not found", path.display());
        None
    }
}

/// Rows of a manifest as (header -> value) lookups.
fn manifest_rows(path: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(path).expect("manifest opens");
    reader.records().map(|r| r.expect("manifest row parses")).collect()
}

fn column(path: &Path, name: &str) -> usize {
    let mut reader = csv::Reader::from_path(path).expect("manifest opens");
    let headers = reader.headers().expect("manifest has a header").clone();
    headers
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("{} has no column {name}", path.display()))
}

fn describe(symbols: &[barcode::Pdf417Symbol]) -> String {
    let parts: Vec<String> = symbols
        .iter()
        .map(|s| format!("{:?}:{}:{:016x}", s.segment_index, s.text.chars().count(), fnv(s.text.bytes())))
        .collect();
    format!("{} [{}]", symbols.len(), parts.join(" "))
}

/// Every dev PDF417 image, through both entry points the service and the evaluation use.
#[test]
fn pdf417_decoding_is_the_same_in_every_process() {
    let Some(manifest) = shared_manifest("pdf417/dev/manifest.csv") else { return };
    if !is_child() {
        return assert_same_in_every_process("pdf417_decoding_is_the_same_in_every_process");
    }
    let image_col = column(&manifest, "image");
    let dir = manifest.parent().expect("manifest has a folder");
    for row in manifest_rows(&manifest) {
        let name = &row[image_col];
        let image = image::open(dir.join(name)).expect("image decodes").to_rgb8();
        let first = barcode::decode_pdf417_symbol(&image);
        let all = barcode::decode_pdf417_all(&image);
        emit(format!("{name}\tfirst={}\tall={}", describe(first.as_slice()), describe(&all)));
    }
}

fn scaled(image: &RgbImage, factor: f32) -> RgbImage {
    let w = ((image.width() as f32 * factor) as u32).max(1);
    let h = ((image.height() as f32 * factor) as u32).max(1);
    image::imageops::resize(image, w, h, FilterType::Triangle)
}

/// Adds uniform noise of +-`amplitude` from a fixed-seed generator.
fn noisy(image: &RgbImage, amplitude: i32, seed: u64) -> RgbImage {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut out = image.clone();
    for p in out.pixels_mut() {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delta = ((state >> 33) % (2 * amplitude as u64 + 1)) as i32 - amplitude;
        for c in &mut p.0 {
            *c = (i32::from(*c) + delta).clamp(0, 255) as u8;
        }
    }
    out
}

fn jpeg(image: &RgbImage, quality: u8) -> RgbImage {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut Cursor::new(&mut bytes), quality)
        .encode_image(image)
        .expect("JPEG encodes");
    image::load_from_memory(&bytes).expect("JPEG decodes").to_rgb8()
}

/// Damaged copies of dev images (image, what was done, the noise seed) on which rxing 0.9.3 finds
/// codewords or row-indicator values with tied votes. It returns ties in `HashMap` order, which
/// changes from process to process: these decoded in some processes and not in others, and one
/// (`2__09`) to the right text in one process and to a wrong one in another.
const TIED: [(&str, &str, u64); 5] = [
    ("zxing-zxing__pdf417-2__03.png", "scale0.35", 0),
    ("zxing-zxing__pdf417-2__09.png", "scale0.6+noise40", 15),
    ("zxing-zxing__pdf417-2__10.png", "blur1+noise30+jpeg30", 17),
    ("zxing-zxing__pdf417-2__11.png", "scale0.45+noise40", 17),
    ("zxing-zxing__pdf417-2__19.png", "scale0.6", 0),
];

fn damaged(image: &RgbImage, what: &str, seed: u64) -> RgbImage {
    match what {
        "scale0.35" => scaled(image, 0.35),
        "scale0.6" => scaled(image, 0.6),
        "scale0.6+noise40" => noisy(&scaled(image, 0.6), 40, seed),
        "scale0.45+noise40" => noisy(&scaled(image, 0.45), 40, seed),
        "blur1+noise30+jpeg30" => jpeg(&noisy(&image::imageops::blur(image, 1.0), 30, seed), 30),
        other => panic!("unknown damage {other}"),
    }
}

/// Damaged symbols are where rxing's vote ties happen; this failed before the vendored fix
/// (vendor/rxing/PATCHED.md: `BarcodeValue` over a `BTreeMap`).
#[test]
fn damaged_pdf417_decoding_is_the_same_in_every_process() {
    let Some(manifest) = shared_manifest("pdf417/dev/manifest.csv") else { return };
    if !is_child() {
        return assert_same_in_every_process("damaged_pdf417_decoding_is_the_same_in_every_process");
    }
    let dir = manifest.parent().expect("manifest has a folder");
    for (name, what, seed) in TIED {
        let image = image::open(dir.join(name)).expect("image decodes").to_rgb8();
        let found = barcode::decode_pdf417_symbol(&damaged(&image, what, seed));
        emit(format!("{name}\t{what}\t{}", describe(found.as_slice())));
    }
}

/// Every [`MRZ_STRIDE`]th dev MRZ image through the whole document scan.
#[test]
fn mrz_reading_is_the_same_in_every_process() {
    let Some(manifest) = shared_manifest("mrz_docs/dev/manifest.csv") else { return };
    let models_dir = std::env::var_os("IDVERIFY_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../../models"));
    if !models_dir.join(idverify_document::REC_MODEL).is_file() {
        eprintln!("SKIP: models not found in {}", models_dir.display());
        return;
    }
    if !is_child() {
        return assert_same_in_every_process("mrz_reading_is_the_same_in_every_process");
    }
    let engine = DocumentEngine::load(&DocumentEngineConfig {
        models_dir,
        intra_threads: 1,
        sessions: 1,
        cross_check_passports: false,
    })
    .expect("engine loads");
    let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("a date");
    let file_col = column(&manifest, "file");
    let dir = manifest.parent().expect("manifest has a folder");
    for row in manifest_rows(&manifest).iter().step_by(MRZ_STRIDE) {
        let name = &row[file_col];
        let image = image::open(dir.join(name)).expect("image decodes").to_rgb8();
        let scan = engine.scan(&image, RequestedType::Auto, today).expect("scan runs");
        // Debug prints floats exactly (shortest round-trip form), so equal text means equal bits.
        let text = format!("{scan:?}");
        emit(format!(
            "{name}\t{:?}\t{:?}\t{}\t{:016x}",
            scan.source,
            scan.error.as_ref().map(|e| e.code),
            scan.confidence.to_bits(),
            fnv(text.bytes())
        ));
    }
}
