//! `idverify eval faces`: verification figures on a pairs file (`img_a,img_b,same[,fold,...]`,
//! paths relative to the csv).
//!
//! Face choice per image: YuNet at its normal threshold; if nothing is found (LFW's 250×250 tight
//! crops sometimes cut the face at the border), the image is padded by 25 % on every side with
//! black and detected again. Among faces at least a quarter the area of the largest, the one
//! nearest the image centre is used (LFW labels the centred person).
//! Pairs with a detection failure count as non-matches (distance +∞ for ROC figures).
//!
//! Document style: each pair's first image is cut around its face, pasted small (face 75-100 px
//! wide) into the portrait area of a synthetic ID card inside a 1280×960 "phone photo",
//! JPEG-compressed (quality 70), decoded, and found again with `find_portrait`.
//!
//! All pairs (`--impostors all`): an image's identity is its folder (`Name/Name_0001.jpg`); every
//! cross-identity pair of the file's images is an impostor pair and every same-identity pair within
//! a fold (LFW's folds are identity-disjoint) a genuine one. In document style the probes are the
//! document renders of the first images and the gallery the plain second images. Each image is
//! embedded once; the pairs are scored from the embeddings held in memory.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageDecoder, ImageReader, Rgb, RgbImage};
use serde::Serialize;

use crate::{Embedding, Face, FaceEngine, FaceError};

#[derive(Clone, Debug)]
pub struct ScoredPair {
    pub img_a: String,
    pub img_b: String,
    pub same: bool,
    pub fold: Option<i64>,
    /// None when a face was not found in either image.
    pub distance: Option<f32>,
    /// SFace cosine, when the engine has SFace loaded and both faces were found.
    pub second_cosine: Option<f32>,
}

#[derive(Clone, Debug)]
pub struct ScoredPairs {
    pub pairs: Vec<ScoredPair>,
    pub images: usize,
    /// Image keys (file names; `doc:` prefix for document-style renders) where no face was found.
    pub detect_failures: Vec<String>,
    /// detect + align + embed time per image, milliseconds.
    pub ms_per_image: Vec<f64>,
    /// Embedding per image key (as in `detect_failures`), for the all-pairs figures.
    pub embeddings: HashMap<String, Embedding>,
    /// SFace embedding per image key (empty without SFace).
    pub second: HashMap<String, Embedding>,
    /// CPU milliseconds per SFace alignment + embedding (the calling thread's time).
    pub second_cpu_ms: Vec<f64>,
    pub document_style: bool,
}

/// Options of `idverify eval faces`.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    pub document_style: bool,
    /// Also score every cross-identity pair of the file's images (see the module doc).
    pub all_impostors: bool,
    /// Write DET curves (SVG) into this folder (needs SFace loaded).
    pub plot_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoldFigure {
    pub folds: usize,
    pub mean_accuracy: f64,
    pub std_accuracy: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalSummary {
    pub pairs: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    pub images: usize,
    pub detect_fail_images: usize,
    pub detect_fail_pairs: usize,
    pub threshold_distance: f32,
    /// Percentages.
    pub accuracy: f64,
    pub fmr_at_threshold: f64,
    pub fnmr_at_threshold: f64,
    /// Impostor pairs accepted and genuine pairs rejected at the threshold (counts).
    pub impostors_accepted: usize,
    pub genuine_rejected: usize,
    pub best_accuracy: f64,
    pub best_threshold: f64,
    pub tar_at_fmr_1: f64,
    pub tar_at_fmr_0_1: f64,
    pub eer: f64,
    pub auc: f64,
    pub median_ms_per_image: f64,
    pub folds: Option<FoldFigure>,
    /// With `--impostors all`.
    pub all_pairs: Option<AllPairsSummary>,
    /// The wrong decisions at the threshold, listed when there are at most [`MAX_LISTED_ERRORS`].
    pub errors_at_threshold: Vec<PairError>,
}

/// Wrong decisions listed in the report up to this many.
pub const MAX_LISTED_ERRORS: usize = 20;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairError {
    pub img_a: String,
    pub img_b: String,
    pub same: bool,
    pub distance: Option<f32>,
}

/// FNMR where the all-pairs impostor set gives a false-match rate.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FnmrAtFmr {
    pub fmr: f64,
    /// None when the set has too few impostors for this rate.
    pub threshold: Option<f64>,
    pub impostors_accepted: usize,
    /// Percentages: on every same-identity pair, and on the file's genuine pairs.
    pub fnmr_all: f64,
    pub fnmr_pairs: f64,
}

/// One held-out fold: threshold from every cross-identity pair of the other folds' images.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOutFold {
    pub fold: i64,
    pub threshold: f64,
    pub train_impostors: usize,
    pub train_accepted: usize,
    /// The held-out fold's own pairs from the file.
    pub pairs: usize,
    pub correct: usize,
    pub impostor_pairs: usize,
    pub false_matches: usize,
    pub genuine_pairs: usize,
    pub false_non_matches: usize,
    /// Every cross-identity pair of the held-out fold's images.
    pub cross_impostors: usize,
    pub cross_false_matches: usize,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOutFolds {
    pub target_fmr: f64,
    pub folds: Vec<HeldOutFold>,
    /// Percentages.
    pub mean_accuracy: f64,
    pub std_accuracy: f64,
    pub fmr_pairs: f64,
    pub fmr_cross: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllPairsSummary {
    pub images: usize,
    pub identities: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Same-identity pairs across folds (neither genuine nor impostor; 0 when folds are disjoint).
    pub skipped_cross_fold: usize,
    pub impostors_accepted: usize,
    pub genuine_rejected: usize,
    /// Percentages at the configured threshold.
    pub fmr_at_threshold: f64,
    pub fnmr_at_threshold: f64,
    pub at_fmr: Vec<FnmrAtFmr>,
    pub held_out: Option<HeldOutFolds>,
}

struct PairRow {
    img_a: String,
    img_b: String,
    same: bool,
    fold: Option<i64>,
}

fn read_pairs(pairs_csv: &Path) -> Result<Vec<PairRow>, FaceError> {
    let mut reader = csv::Reader::from_path(pairs_csv)
        .map_err(|e| FaceError::Io(format!("{}: {e}", pairs_csv.display())))?;
    let headers = reader.headers().map_err(|e| FaceError::Data(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (ia, ib, is) = match (col("img_a"), col("img_b"), col("same")) {
        (Some(a), Some(b), Some(s)) => (a, b, s),
        _ => return Err(FaceError::Data("pairs csv needs columns img_a,img_b,same".into())),
    };
    let ifold = col("fold");
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| FaceError::Data(e.to_string()))?;
        let field = |i: usize| record.get(i).map(str::trim).unwrap_or("");
        let same = match field(is).to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            other => return Err(FaceError::Data(format!("row {}: bad `same` value {other:?}", line + 2))),
        };
        let fold = ifold.and_then(|i| field(i).parse::<i64>().ok());
        rows.push(PairRow { img_a: field(ia).to_string(), img_b: field(ib).to_string(), same, fold });
    }
    Ok(rows)
}

/// Decodes an image file and applies its EXIF orientation.
pub fn load_oriented_rgb(path: &Path) -> Result<RgbImage, FaceError> {
    let err = |e: String| FaceError::Io(format!("{}: {e}", path.display()));
    let mut decoder = ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?
        .into_decoder()
        .map_err(|e| err(e.to_string()))?;
    let orientation = decoder.orientation().map_err(|e| err(e.to_string()))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| err(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// The evaluated face of a dataset image (see the module doc), or None.
pub fn dataset_face(engine: &FaceEngine, image: &RgbImage) -> Result<Option<Face>, FaceError> {
    let mut faces = engine.detect(image)?;
    if faces.is_empty() {
        let (w, h) = image.dimensions();
        let (px, py) = (w / 4, h / 4);
        let mut padded = RgbImage::new(w + 2 * px, h + 2 * py);
        image::imageops::replace(&mut padded, image, px as i64, py as i64);
        faces = engine
            .detect(&padded)?
            .into_iter()
            .map(|f| crate::shift_face(f, -(px as f32), -(py as f32)))
            .collect();
    }
    let Some(largest) = faces.first().map(|f| f.bbox.width * f.bbox.height) else {
        return Ok(None);
    };
    let (cx, cy) = (image.width() as f32 / 2.0, image.height() as f32 / 2.0);
    let centre_dist = |f: &Face| {
        let (fx, fy) = (f.bbox.x + f.bbox.width / 2.0, f.bbox.y + f.bbox.height / 2.0);
        (fx - cx).powi(2) + (fy - cy).powi(2)
    };
    Ok(faces
        .into_iter()
        .filter(|f| f.bbox.width * f.bbox.height >= 0.25 * largest)
        .min_by(|a, b| centre_dist(a).total_cmp(&centre_dist(b))))
}

/// Deterministic small hash for per-image choices (face width, layout).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Renders `face` of `image` as the portrait of a synthetic ID card photographed at 1280×960,
/// with the face `face_width` px wide, JPEG-compressed at quality 70. Deterministic.
pub fn synthetic_document(
    image: &RgbImage,
    face: &Face,
    face_width: f32,
    seed: u64,
) -> Result<RgbImage, FaceError> {
    let scale = face_width / face.bbox.width.max(1.0);
    // Portrait frame around the face: 1.7 face widths wide, 2.2 tall (passport-photo framing).
    let (fw, fh) = (face.bbox.width * 1.7, face.bbox.width * 2.2);
    let (fcx, fcy) = (face.bbox.x + face.bbox.width / 2.0, face.bbox.y + face.bbox.height / 2.0);
    let (out_w, out_h) = ((fw * scale).round().max(8.0) as u32, (fh * scale).round().max(8.0) as u32);
    let inv = 1.0 / scale;
    let (x0, y0) = (fcx - fw / 2.0, fcy - fh / 2.0 - 0.1 * fh);
    // Resample the frame (bilinear on an area-reduced copy when shrinking a lot).
    let src = if inv >= 2.0 {
        let f = inv.floor() as u32;
        image::imageops::thumbnail(image, (image.width() / f).max(1), (image.height() / f).max(1))
    } else {
        image.clone()
    };
    let sx = src.width() as f32 / image.width() as f32;
    let sy = src.height() as f32 / image.height() as f32;
    let light = Rgb([236u8, 238, 242]);
    let portrait = RgbImage::from_fn(out_w, out_h, |u, v| {
        let x = (x0 + u as f32 * inv) * sx;
        let y = (y0 + v as f32 * inv) * sy;
        if x < 0.0 || y < 0.0 || x > (src.width() - 1) as f32 || y > (src.height() - 1) as f32 {
            return light;
        }
        let (xi, yi) = (x.floor() as u32, y.floor() as u32);
        let (x1, y1) = ((xi + 1).min(src.width() - 1), (yi + 1).min(src.height() - 1));
        let (fx, fy) = (x - xi as f32, y - yi as f32);
        let p = |a: u32, b: u32| src.get_pixel(a, b).0.map(|c| c as f32);
        let (p00, p10, p01, p11) = (p(xi, yi), p(x1, yi), p(xi, y1), p(x1, y1));
        let mut out = [0u8; 3];
        for c in 0..3 {
            let t = p00[c] + (p10[c] - p00[c]) * fx;
            let b = p01[c] + (p11[c] - p01[c]) * fx;
            out[c] = (t + (b - t) * fy).round().clamp(0.0, 255.0) as u8;
        }
        Rgb(out)
    });

    // Card sized so the portrait frame is about 30 % of its width (ID-1 layout), on a table.
    let card_w = ((out_w as f32 / 0.3) as u32).clamp(300, 1200);
    let card_h = (card_w as f32 / 1.586) as u32;
    let mut canvas = RgbImage::from_pixel(1280, 960, Rgb([120, 104, 90]));
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (cx0, cy0) = (
        (40 + next() % (1280u64.saturating_sub(card_w as u64 + 80).max(1))) as i64,
        (40 + next() % (960u64.saturating_sub(card_h as u64 + 80).max(1))) as i64,
    );
    let card = RgbImage::from_fn(card_w, card_h, |x, y| {
        // Pastel background with a faint wave pattern, blue header band.
        if y < card_h / 8 {
            return Rgb([40, 80, 140]);
        }
        let wave = ((x as f32 * 0.05).sin() * (y as f32 * 0.07).cos() * 8.0) as i16;
        Rgb([(220 + wave) as u8, (228 + wave) as u8, (236 - wave) as u8])
    });
    image::imageops::replace(&mut canvas, &card, cx0, cy0);
    let (px, py) = (cx0 + (card_w / 20) as i64, cy0 + (card_h / 5) as i64);
    image::imageops::replace(&mut canvas, &portrait, px, py);
    // Text lines to the right of the portrait.
    let text_x = px + out_w as i64 + (card_w / 20) as i64;
    for line in 0..6 {
        let ly = cy0 + (card_h / 5) as i64 + line * (card_h as i64 / 9);
        let len = (card_w as i64 / 3) + (next() % (card_w as u64 / 4 + 1)) as i64;
        for y in ly..ly + (card_h as i64 / 28).max(3) {
            for x in text_x..(text_x + len).min(cx0 + card_w as i64 - 10) {
                if (x / 7 + line) % 5 != 0 && x >= 0 && y >= 0 && (x as u32) < 1280 && (y as u32) < 960 {
                    canvas.put_pixel(x as u32, y as u32, Rgb([30, 30, 40]));
                }
            }
        }
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .encode_image(&canvas)
        .map_err(|e| FaceError::Data(format!("jpeg encode: {e}")))?;
    let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .map_err(|e| FaceError::Data(format!("jpeg decode: {e}")))?;
    Ok(decoded.to_rgb8())
}

/// One image's embeddings (dlib; SFace when loaded).
struct ImageResult {
    dlib: Option<Embedding>,
    second: Option<Embedding>,
    /// detect + align + dlib embedding, wall milliseconds.
    ms: f64,
    /// SFace alignment + embedding, CPU milliseconds of this thread.
    second_cpu_ms: Option<f64>,
}

/// CPU time of the calling thread (Linux `/proc/thread-self/schedstat`), None elsewhere.
pub fn thread_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse::<f64>().ok().map(|ns| ns / 1e6)
}

fn embed_image(
    engine: &FaceEngine,
    path: &Path,
    document: bool,
    key: &str,
) -> Result<ImageResult, FaceError> {
    let image = load_oriented_rgb(path)?;
    let none = ImageResult { dlib: None, second: None, ms: 0.0, second_cpu_ms: None };
    let (image, face, ms) = if document {
        let Some(face) = dataset_face(engine, &image)? else { return Ok(none) };
        let width = 75.0 + (fnv(key) % 26) as f32;
        let doc = synthetic_document(&image, &face, width, fnv(key))?;
        let start = Instant::now();
        let found = engine.find_portrait(&doc)?;
        (doc, found, start)
    } else {
        let start = Instant::now();
        let face = dataset_face(engine, &image)?;
        (image, face, start)
    };
    let Some(face) = face else { return Ok(none) };
    let dlib = engine.embed(&image, &face)?;
    let ms = ms.elapsed().as_secs_f64() * 1000.0;
    let (second, second_cpu_ms) = if engine.has_second() {
        let cpu = thread_cpu_ms();
        let e = engine.embed_second(&image, &face)?;
        (Some(e), cpu.zip(thread_cpu_ms()).map(|(a, b)| b - a))
    } else {
        (None, None)
    };
    Ok(ImageResult { dlib: Some(dlib), second, ms, second_cpu_ms })
}

/// Embeds every image of the pairs file once (two worker threads) and scores each pair.
pub fn score_pairs(
    engine: &FaceEngine,
    pairs_csv: &Path,
    document_style: bool,
    out: &mut dyn Write,
) -> Result<ScoredPairs, FaceError> {
    let rows = read_pairs(pairs_csv)?;
    let base = pairs_csv.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    // (key, relative path, document render?)
    let mut jobs: Vec<(String, String, bool)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let a_doc = document_style;
        for (rel, doc) in [(&row.img_a, a_doc), (&row.img_b, false)] {
            let key = if doc { format!("doc:{rel}") } else { rel.clone() };
            if seen.insert(key.clone()) {
                jobs.push((key, rel.clone(), doc));
            }
        }
    }
    let results: Mutex<HashMap<String, ImageResult>> = Mutex::new(HashMap::new());
    let first_error: Mutex<Option<FaceError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let progress = Progress::new("embedding images", jobs.len());
    let workers = 2;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((key, rel, doc)) = jobs.get(i) else { break };
                    match embed_image(engine, &base.join(rel), *doc, key) {
                        Ok(r) => {
                            results.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), r);
                            progress.tick(1);
                        }
                        Err(e) => {
                            first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
    });
    progress.finish();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    let mut detect_failures = Vec::new();
    let mut ms = Vec::new();
    let second_cpu_ms: Vec<f64> = results.values().filter_map(|r| r.second_cpu_ms).collect();
    for (key, _, _) in &jobs {
        match results.get(key) {
            Some(ImageResult { dlib: Some(_), ms: t, .. }) => ms.push(*t),
            _ => {
                writeln!(out, "detect_fail {key}").map_err(io)?;
                detect_failures.push(key.clone());
            }
        }
    }
    let emb = |key: &str| results.get(key).and_then(|r| r.dlib.as_ref());
    let second = |key: &str| results.get(key).and_then(|r| r.second.as_ref());
    let pairs = rows
        .iter()
        .map(|row| {
            let key_a = if document_style { format!("doc:{}", row.img_a) } else { row.img_a.clone() };
            let distance = match (emb(&key_a), emb(&row.img_b)) {
                (Some(a), Some(b)) => Some(engine.compare(a, b).distance),
                _ => None,
            };
            let second_cosine = match (second(&key_a), second(&row.img_b)) {
                (Some(a), Some(b)) => crate::sface::cosine(a, b),
                _ => None,
            };
            ScoredPair {
                img_a: row.img_a.clone(),
                img_b: row.img_b.clone(),
                same: row.same,
                fold: row.fold,
                distance,
                second_cosine,
            }
        })
        .collect();
    let mut embeddings = HashMap::new();
    let mut second = HashMap::new();
    for (key, r) in results {
        if let Some(e) = r.second {
            second.insert(key.clone(), e);
        }
        if let Some(e) = r.dlib {
            embeddings.insert(key, e);
        }
    }
    Ok(ScoredPairs {
        pairs,
        images: jobs.len(),
        detect_failures,
        ms_per_image: ms,
        embeddings,
        second,
        second_cpu_ms,
        document_style,
    })
}

/// Progress on stderr for long runs: a bar redrawn in place on a terminal, else a line every 10 s.
/// Nothing is shown for the first 2 s.
pub struct Progress {
    label: &'static str,
    total: usize,
    done: AtomicUsize,
    start: Instant,
    last: Mutex<Option<Instant>>,
    tty: bool,
}

impl Progress {
    pub fn new(label: &'static str, total: usize) -> Progress {
        Progress {
            label,
            total,
            done: AtomicUsize::new(0),
            start: Instant::now(),
            last: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn tick(&self, n: usize) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let now = Instant::now();
        let elapsed = now - self.start;
        if elapsed < Duration::from_secs(2) {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let every = if self.tty { Duration::from_millis(200) } else { Duration::from_secs(10) };
        if last.is_some_and(|t| now - t < every) {
            return;
        }
        *last = Some(now);
        self.draw(done, elapsed);
    }

    fn draw(&self, done: usize, elapsed: Duration) {
        let frac = done as f64 / self.total.max(1) as f64;
        let secs = elapsed.as_secs_f64();
        let left = if frac > 0.0 { secs * (1.0 - frac) / frac } else { 0.0 };
        if self.tty {
            let filled = (frac * 30.0).round() as usize;
            eprint!(
                "\r{} [{}{}] {done}/{} {:.0} s, ~{:.0} s left ",
                self.label,
                "#".repeat(filled.min(30)),
                ".".repeat(30 - filled.min(30)),
                self.total,
                secs,
                left
            );
        } else {
            eprintln!(
                "{}: {done}/{} ({:.0} %) after {:.0} s, ~{:.0} s left",
                self.label,
                self.total,
                100.0 * frac,
                secs,
                left
            );
        }
    }

    /// Ends the bar (a final line if anything was shown).
    pub fn finish(&self) {
        let shown = self.last.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        if shown {
            self.draw(self.done.load(Ordering::Relaxed), self.start.elapsed());
            if self.tty {
                eprintln!();
            }
        }
    }
}

/// Identity of a dataset image: its folder (`Name/Name_0001.jpg` -> `Name`).
pub fn identity_of(rel: &str) -> Option<&str> {
    rel.rsplit_once('/').map(|(dir, _)| dir).filter(|d| !d.is_empty())
}

/// Distances of every pair of a file's images (see the module doc), grouped by fold.
#[derive(Clone, Debug, Default)]
pub struct AllPairScores {
    pub images: usize,
    pub identities: usize,
    /// Same identity (and same fold): by fold (None when the file has no folds).
    pub genuine: HashMap<Option<i64>, Vec<f32>>,
    /// Cross identity: by the two images' folds, smaller first.
    pub impostor: HashMap<(Option<i64>, Option<i64>), Vec<f32>>,
    /// Same-identity pairs whose images sit in different folds (0 when folds are identity-disjoint).
    pub skipped_cross_fold: usize,
    /// SFace cosines of the same pairs, in the same order (NaN where an image has no SFace
    /// embedding); empty without SFace.
    pub genuine_second: HashMap<Option<i64>, Vec<f32>>,
    pub impostor_second: HashMap<(Option<i64>, Option<i64>), Vec<f32>>,
}

impl AllPairScores {
    pub fn genuine_all(&self) -> Vec<f32> {
        self.genuine.values().flatten().copied().collect()
    }

    pub fn impostor_all(&self) -> Vec<f32> {
        self.impostor.values().flatten().copied().collect()
    }

    /// (dlib distance, SFace cosine) of every same-identity pair, optionally leaving out a fold.
    pub fn genuine_both(&self, without: Option<i64>) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for (fold, d) in &self.genuine {
            if without.is_some() && *fold == without {
                continue;
            }
            let s = self.genuine_second.get(fold).map(Vec::as_slice).unwrap_or(&[]);
            out.extend(d.iter().zip(s.iter().chain(std::iter::repeat(&f32::NAN))).map(|(a, b)| (*a, *b)));
        }
        out
    }

    /// (dlib distance, SFace cosine) of every cross-identity pair, optionally among the images of
    /// the folds other than `without` only.
    pub fn impostor_both(&self, without: Option<i64>) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for ((a, b), d) in &self.impostor {
            if without.is_some() && (*a == without || *b == without) {
                continue;
            }
            let s = self.impostor_second.get(&(*a, *b)).map(Vec::as_slice).unwrap_or(&[]);
            out.extend(d.iter().zip(s.iter().chain(std::iter::repeat(&f32::NAN))).map(|(x, y)| (*x, *y)));
        }
        out
    }

    /// Every cross-identity pair among the images of the folds other than `fold`.
    pub fn impostor_without(&self, fold: i64) -> Vec<f32> {
        self.impostor
            .iter()
            .filter(|((a, b), _)| *a != Some(fold) && *b != Some(fold))
            .flat_map(|(_, v)| v.iter().copied())
            .collect()
    }
}

/// Scores every pair of the scored file's images from the embeddings in memory (plain: each
/// unordered pair of distinct images; document style: each document render against each plain
/// image of another photo).
pub fn all_pair_scores(scored: &ScoredPairs) -> Result<AllPairScores, FaceError> {
    let mut fold_of: HashMap<&str, Option<i64>> = HashMap::new();
    for p in &scored.pairs {
        fold_of.entry(p.img_a.as_str()).or_insert(p.fold);
        fold_of.entry(p.img_b.as_str()).or_insert(p.fold);
    }
    let mut ids: HashMap<&str, u32> = HashMap::new();
    // (source image, identity, fold, embedding)
    type Entry<'a> = (&'a str, u32, Option<i64>, &'a [f32], Option<&'a [f32]>);
    let (mut probes, mut gallery): (Vec<Entry>, Vec<Entry>) = (Vec::new(), Vec::new());
    let mut keys: Vec<&String> = scored.embeddings.keys().collect();
    keys.sort();
    for key in keys {
        let (rel, doc) = match key.strip_prefix("doc:") {
            Some(rel) => (rel, true),
            None => (key.as_str(), false),
        };
        let identity = identity_of(rel).ok_or_else(|| {
            FaceError::Data(format!("all pairs need image paths of the form IDENTITY/FILE, got {rel:?}"))
        })?;
        let next_id = ids.len() as u32;
        let id = *ids.entry(identity).or_insert(next_id);
        let second = scored.second.get(key).map(|e| e.0.as_slice());
        let entry =
            (rel, id, fold_of.get(rel).copied().flatten(), scored.embeddings[key].0.as_slice(), second);
        if doc { probes.push(entry) } else { gallery.push(entry) }
    }
    let mut all = AllPairScores { identities: ids.len(), ..Default::default() };
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt();
    let with_second = !scored.second.is_empty();
    let cosine = |a: Option<&[f32]>, b: Option<&[f32]>| match (a, b) {
        (Some(a), Some(b)) => a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
        _ => f32::NAN,
    };
    let add = |all: &mut AllPairScores, a: &Entry, b: &Entry| {
        let d = dist(a.3, b.3);
        if a.1 == b.1 {
            if a.2 == b.2 {
                all.genuine.entry(a.2).or_default().push(d);
                if with_second {
                    all.genuine_second.entry(a.2).or_default().push(cosine(a.4, b.4));
                }
            } else {
                all.skipped_cross_fold += 1;
            }
        } else {
            let key = if a.2 <= b.2 { (a.2, b.2) } else { (b.2, a.2) };
            all.impostor.entry(key).or_default().push(d);
            if with_second {
                all.impostor_second.entry(key).or_default().push(cosine(a.4, b.4));
            }
        }
    };
    if scored.document_style {
        all.images = probes.len() + gallery.len();
        let progress = Progress::new("scoring all pairs", probes.len() * gallery.len());
        for a in &probes {
            for b in gallery.iter().filter(|b| b.0 != a.0) {
                add(&mut all, a, b);
            }
            progress.tick(gallery.len());
        }
        progress.finish();
    } else {
        all.images = gallery.len();
        let n = gallery.len();
        let progress = Progress::new("scoring all pairs", n * n.saturating_sub(1) / 2);
        for (i, a) in gallery.iter().enumerate() {
            for b in &gallery[i + 1..] {
                add(&mut all, a, b);
            }
            progress.tick(n - i - 1);
        }
        progress.finish();
    }
    Ok(all)
}

/// Empirical distance threshold for `fmr` on unsorted impostor distances, as
/// [`crate::calibration::empirical_threshold`] (k = ⌊fmr·n⌋ impostors at or below it, halfway to
/// the next), with k; None when the set allows no impostor at this rate.
pub fn threshold_at_fmr(impostor: &[f32], fmr: f64) -> Option<(f64, usize)> {
    let n = impostor.len();
    let k = (fmr * n as f64).floor() as usize;
    if k == 0 || k >= n {
        return None;
    }
    let mut v = impostor.to_vec();
    let (below, kth, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    let last_below = below.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    Some(((last_below as f64 + *kth as f64) / 2.0, k))
}

fn count_at_or_below(ds: &[f32], t: f32) -> usize {
    ds.iter().filter(|&&d| d <= t).count()
}

fn pct(k: usize, n: usize) -> f64 {
    100.0 * k as f64 / n.max(1) as f64
}

/// All-pairs figures: rates at the configured threshold, FNMR at FMR 10⁻³ and 10⁻⁴, and, when the
/// file has folds, the held-out-fold figure at `target_fmr`.
pub fn all_pairs_summary(
    scored: &ScoredPairs,
    all: &AllPairScores,
    threshold_distance: f32,
    target_fmr: f64,
) -> AllPairsSummary {
    let genuine = all.genuine_all();
    let impostor = all.impostor_all();
    let file_genuine: Vec<f32> =
        scored.pairs.iter().filter(|p| p.same).map(|p| p.distance.unwrap_or(f32::INFINITY)).collect();
    let impostors_accepted = count_at_or_below(&impostor, threshold_distance);
    let genuine_rejected = genuine.len() - count_at_or_below(&genuine, threshold_distance);
    let at_fmr = [1e-3, 1e-4]
        .into_iter()
        .map(|fmr| match threshold_at_fmr(&impostor, fmr) {
            Some((t, _)) => {
                let t32 = t as f32;
                FnmrAtFmr {
                    fmr,
                    threshold: Some(t),
                    impostors_accepted: count_at_or_below(&impostor, t32),
                    fnmr_all: 100.0 - pct(count_at_or_below(&genuine, t32), genuine.len()),
                    fnmr_pairs: 100.0 - pct(count_at_or_below(&file_genuine, t32), file_genuine.len()),
                }
            }
            None => {
                FnmrAtFmr { fmr, threshold: None, impostors_accepted: 0, fnmr_all: 100.0, fnmr_pairs: 100.0 }
            }
        })
        .collect();
    let mut fold_ids: Vec<i64> = scored.pairs.iter().filter_map(|p| p.fold).collect();
    fold_ids.sort();
    fold_ids.dedup();
    let held_out = (fold_ids.len() >= 2 && scored.pairs.iter().all(|p| p.fold.is_some()))
        .then(|| {
            let folds: Vec<HeldOutFold> = fold_ids
                .iter()
                .filter_map(|&f| {
                    let train = all.impostor_without(f);
                    let (t, k) = threshold_at_fmr(&train, target_fmr)?;
                    let t32 = t as f32;
                    let test: Vec<&ScoredPair> = scored.pairs.iter().filter(|p| p.fold == Some(f)).collect();
                    let accepted = |p: &&ScoredPair| p.distance.is_some_and(|d| d <= t32);
                    let cross = all.impostor.get(&(Some(f), Some(f))).map(Vec::as_slice).unwrap_or(&[]);
                    Some(HeldOutFold {
                        fold: f,
                        threshold: t,
                        train_impostors: train.len(),
                        train_accepted: k,
                        pairs: test.len(),
                        correct: test.iter().filter(|p| accepted(p) == p.same).count(),
                        impostor_pairs: test.iter().filter(|p| !p.same).count(),
                        false_matches: test.iter().filter(|p| !p.same && accepted(p)).count(),
                        genuine_pairs: test.iter().filter(|p| p.same).count(),
                        false_non_matches: test.iter().filter(|p| p.same && !accepted(p)).count(),
                        cross_impostors: cross.len(),
                        cross_false_matches: count_at_or_below(cross, t32),
                    })
                })
                .collect();
            if folds.is_empty() {
                return None;
            }
            let accs: Vec<f64> = folds.iter().map(|f| pct(f.correct, f.pairs)).collect();
            let mean = accs.iter().sum::<f64>() / accs.len() as f64;
            let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64).sqrt();
            let sum = |g: fn(&HeldOutFold) -> usize| folds.iter().map(g).sum::<usize>();
            Some(HeldOutFolds {
                target_fmr,
                mean_accuracy: mean,
                std_accuracy: std,
                fmr_pairs: pct(sum(|f| f.false_matches), sum(|f| f.impostor_pairs)),
                fmr_cross: pct(sum(|f| f.cross_false_matches), sum(|f| f.cross_impostors)),
                folds,
            })
        })
        .flatten();
    AllPairsSummary {
        images: all.images,
        identities: all.identities,
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        skipped_cross_fold: all.skipped_cross_fold,
        impostors_accepted,
        genuine_rejected,
        fmr_at_threshold: pct(impostors_accepted, impostor.len()),
        fnmr_at_threshold: pct(genuine_rejected, genuine.len()),
        at_fmr,
        held_out,
    }
}

/// Fraction of correct decisions with "match" = distance ≤ t (missing distance = non-match).
fn accuracy_at(pairs: &[(f64, bool)], t: f64) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.iter().filter(|(d, same)| (*d <= t) == *same).count() as f64 / pairs.len() as f64
}

/// Threshold maximizing accuracy (candidates: midpoints between sorted distances).
fn best_threshold(pairs: &[(f64, bool)]) -> (f64, f64) {
    let mut ds: Vec<f64> = pairs.iter().map(|p| p.0).filter(|d| d.is_finite()).collect();
    ds.sort_by(f64::total_cmp);
    ds.dedup();
    let mut candidates = vec![ds.first().map(|d| d - 1e-6).unwrap_or(0.0)];
    candidates.extend(ds.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates.extend(ds.last().map(|d| d + 1e-6));
    // Sweep in order with running counts to stay O(n log n).
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total_impostor = sorted.iter().filter(|p| !p.1).count();
    let (mut best_t, mut best_acc) = (candidates[0], -1.0);
    let (mut i, mut genuine_below, mut impostor_below) = (0usize, 0usize, 0usize);
    for t in candidates {
        while i < sorted.len() && sorted[i].0 <= t {
            if sorted[i].1 {
                genuine_below += 1
            } else {
                impostor_below += 1
            }
            i += 1;
        }
        let correct = genuine_below + (total_impostor - impostor_below);
        let acc = correct as f64 / sorted.len().max(1) as f64;
        if acc > best_acc {
            best_acc = acc;
            best_t = t;
        }
    }
    (best_t, best_acc)
}

/// TAR at the largest threshold whose impostor rate stays ≤ fmr (strictly below the smallest
/// impostor when the set is too small to allow even one).
pub(crate) fn tar_at_fmr(genuine: &[f64], sorted_impostor: &[f64], fmr: f64) -> f64 {
    if genuine.is_empty() || sorted_impostor.is_empty() {
        return 0.0;
    }
    let k = (fmr * sorted_impostor.len() as f64).floor() as usize;
    let limit = sorted_impostor[k.min(sorted_impostor.len() - 1)];
    genuine.iter().filter(|&&d| d < limit).count() as f64 / genuine.len() as f64
}

/// Equal error rate: where FMR (impostor d ≤ t) meets FNMR (genuine d > t).
pub(crate) fn eer(genuine: &[f64], impostor: &[f64]) -> f64 {
    let mut ts: Vec<f64> = genuine.iter().chain(impostor).copied().filter(|d| d.is_finite()).collect();
    ts.sort_by(f64::total_cmp);
    let mut best = (f64::INFINITY, 1.0);
    for t in ts {
        let fmr = impostor.iter().filter(|&&d| d <= t).count() as f64 / impostor.len().max(1) as f64;
        let fnmr = genuine.iter().filter(|&&d| d > t).count() as f64 / genuine.len().max(1) as f64;
        let gap = (fmr - fnmr).abs();
        if gap < best.0 {
            best = (gap, (fmr + fnmr) / 2.0);
        }
    }
    best.1
}

/// ROC AUC = P(genuine distance < impostor distance), ties count half.
fn auc(genuine: &[f64], impostor: &[f64]) -> f64 {
    if genuine.is_empty() || impostor.is_empty() {
        return 0.0;
    }
    let mut sorted_imp = impostor.to_vec();
    sorted_imp.sort_by(f64::total_cmp);
    let mut total = 0.0;
    for &g in genuine {
        let above = sorted_imp.len() - sorted_imp.partition_point(|&d| d <= g);
        let ties = sorted_imp.partition_point(|&d| d <= g) - sorted_imp.partition_point(|&d| d < g);
        total += above as f64 + 0.5 * ties as f64;
    }
    total / (genuine.len() * impostor.len()) as f64
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Figures from scored pairs at a given distance threshold.
pub fn summarize(scored: &ScoredPairs, threshold_distance: f32) -> EvalSummary {
    let all: Vec<(f64, bool)> =
        scored.pairs.iter().map(|p| (p.distance.map(f64::from).unwrap_or(f64::INFINITY), p.same)).collect();
    let genuine: Vec<f64> = all.iter().filter(|p| p.1).map(|p| p.0).collect();
    let mut impostor: Vec<f64> = all.iter().filter(|p| !p.1).map(|p| p.0).collect();
    impostor.sort_by(f64::total_cmp);
    let t = threshold_distance as f64;
    let (best_t, best_acc) = best_threshold(&all);
    let impostors_accepted = impostor.iter().filter(|&&d| d <= t).count();
    let genuine_rejected = genuine.iter().filter(|&&d| d > t).count();
    let fmr_t = impostors_accepted as f64 / impostor.len().max(1) as f64;
    let fnmr_t = genuine_rejected as f64 / genuine.len().max(1) as f64;
    let mut fold_ids: Vec<i64> = scored.pairs.iter().filter_map(|p| p.fold).collect();
    fold_ids.sort();
    fold_ids.dedup();
    let folds = (fold_ids.len() >= 2 && scored.pairs.iter().all(|p| p.fold.is_some())).then(|| {
        let accs: Vec<f64> = fold_ids
            .iter()
            .map(|&f| {
                let train: Vec<(f64, bool)> = scored
                    .pairs
                    .iter()
                    .zip(&all)
                    .filter(|(p, _)| p.fold != Some(f))
                    .map(|(_, a)| *a)
                    .collect();
                let test: Vec<(f64, bool)> = scored
                    .pairs
                    .iter()
                    .zip(&all)
                    .filter(|(p, _)| p.fold == Some(f))
                    .map(|(_, a)| *a)
                    .collect();
                let (t, _) = best_threshold(&train);
                accuracy_at(&test, t)
            })
            .collect();
        let mean = accs.iter().sum::<f64>() / accs.len() as f64;
        let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64).sqrt();
        FoldFigure { folds: accs.len(), mean_accuracy: 100.0 * mean, std_accuracy: 100.0 * std }
    });
    EvalSummary {
        pairs: all.len(),
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        images: scored.images,
        detect_fail_images: scored.detect_failures.len(),
        detect_fail_pairs: scored.pairs.iter().filter(|p| p.distance.is_none()).count(),
        threshold_distance,
        accuracy: 100.0 * accuracy_at(&all, t),
        fmr_at_threshold: 100.0 * fmr_t,
        fnmr_at_threshold: 100.0 * fnmr_t,
        impostors_accepted,
        genuine_rejected,
        best_accuracy: 100.0 * best_acc,
        best_threshold: best_t,
        tar_at_fmr_1: 100.0 * tar_at_fmr(&genuine, &impostor, 0.01),
        tar_at_fmr_0_1: 100.0 * tar_at_fmr(&genuine, &impostor, 0.001),
        eer: 100.0 * eer(&genuine, &impostor),
        auc: auc(&genuine, &impostor),
        median_ms_per_image: median(&scored.ms_per_image),
        folds,
        all_pairs: None,
        errors_at_threshold: {
            let wrong: Vec<PairError> = scored
                .pairs
                .iter()
                .filter(|p| p.distance.is_some_and(|d| d as f64 <= t) != p.same)
                .map(|p| PairError {
                    img_a: p.img_a.clone(),
                    img_b: p.img_b.clone(),
                    same: p.same,
                    distance: p.distance,
                })
                .collect();
            if wrong.len() <= MAX_LISTED_ERRORS { wrong } else { Vec::new() }
        },
    }
}

/// Runs the evaluation and prints the report; the last line is
/// `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=… fmr_at_threshold=…` (percentages; detect_fail
/// counts images).
pub fn run(
    engine: &FaceEngine,
    pairs_csv: &Path,
    opts: EvalOptions,
    out: &mut dyn Write,
) -> Result<EvalSummary, FaceError> {
    let scored = score_pairs(engine, pairs_csv, opts.document_style, out)?;
    let info = engine.model_info();
    let mut s = summarize(&scored, info.threshold_distance);
    let all = if opts.all_impostors { Some(all_pair_scores(&scored)?) } else { None };
    if let Some(all) = &all {
        s.all_pairs = Some(all_pairs_summary(&scored, all, info.threshold_distance, info.target_fmr));
    }
    write_report_body(&s, pairs_csv, opts.document_style, &info, out)?;
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    let cascade = crate::eval_cascade::report(engine, &scored, all.as_ref(), info.target_fmr)?;
    if let Some(c) = &cascade {
        crate::eval_cascade::write_cascade(c, info.target_fmr, out)?;
    }
    if let Some(dir) = &opts.plot_dir {
        let mut name = data_set_name(pairs_csv);
        if opts.document_style {
            name.push_str("-document");
        }
        match crate::eval_cascade::plot(engine, &scored, all.as_ref(), dir, &name)? {
            Some(path) => writeln!(out, "DET plot: {}", path.display()),
            None => writeln!(out, "no DET plot: SFace is not loaded (face_recognizers = \"dlib\")"),
        }
        .map_err(io)?;
    }
    // With SFace the last line speaks for the configured recognizers: their accuracy and FMR at
    // the threshold; TAR and EER from the fused score's curve.
    if let Some(c) = cascade.filter(|c| c.mode != crate::Recognizers::Dlib) {
        s.accuracy = c.configured.accuracy();
        s.fmr_at_threshold = c.configured.fmr();
        let mut sorted = c.fused_impostor.clone();
        sorted.sort_by(f64::total_cmp);
        s.tar_at_fmr_0_1 = 100.0 * tar_at_fmr(&c.fused_genuine, &sorted, 0.001);
        s.eer = 100.0 * eer(&c.fused_genuine, &c.fused_impostor);
    }
    write_last_line(&s, out)?;
    Ok(s)
}

/// `lfw/dev/pairs.csv` -> `lfw-dev`.
fn data_set_name(pairs_csv: &Path) -> String {
    let mut dirs: Vec<String> = pairs_csv
        .parent()
        .map(|p| p.components().rev().take(2).map(|c| c.as_os_str().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    dirs.reverse();
    dirs.join("-")
}

/// Prints a summary; the last line is `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=…
/// fmr_at_threshold=…` (the file's impostor pairs, percent).
pub fn write_report(
    s: &EvalSummary,
    pairs_csv: &Path,
    document_style: bool,
    info: &crate::ModelInfo,
    out: &mut dyn Write,
) -> Result<(), FaceError> {
    write_report_body(s, pairs_csv, document_style, info, out)?;
    write_last_line(s, out)
}

/// `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=… fmr_at_threshold=…`
fn write_last_line(s: &EvalSummary, out: &mut dyn Write) -> Result<(), FaceError> {
    writeln!(
        out,
        "accuracy={:.2} tar_at_fmr_0.1={:.2} eer={:.2} detect_fail={} fmr_at_threshold={:.3}",
        s.accuracy, s.tar_at_fmr_0_1, s.eer, s.detect_fail_images, s.fmr_at_threshold
    )
    .map_err(|e| FaceError::Io(e.to_string()))
}

/// The report without its last line (dlib's figures).
fn write_report_body(
    s: &EvalSummary,
    pairs_csv: &Path,
    document_style: bool,
    info: &crate::ModelInfo,
    out: &mut dyn Write,
) -> Result<(), FaceError> {
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    writeln!(out, "pairs file: {} (document style: {document_style})", pairs_csv.display()).map_err(io)?;
    writeln!(out, "pairs: {} ({} genuine, {} impostor)", s.pairs, s.genuine_pairs, s.impostor_pairs)
        .map_err(io)?;
    writeln!(
        out,
        "detection failures: {} of {} images ({:.2} %), {} pairs affected",
        s.detect_fail_images,
        s.images,
        100.0 * s.detect_fail_images as f64 / s.images.max(1) as f64,
        s.detect_fail_pairs
    )
    .map_err(io)?;
    writeln!(
        out,
        "configured dlib threshold: distance {:.4} (target FMR {}, calibration {})",
        s.threshold_distance, info.target_fmr, info.calibration
    )
    .map_err(io)?;
    writeln!(
        out,
        "accuracy at threshold: {:.2} % (FMR {:.2} %, FNMR {:.2} %)",
        s.accuracy, s.fmr_at_threshold, s.fnmr_at_threshold
    )
    .map_err(io)?;
    writeln!(
        out,
        "realised at the configured threshold: FMR {:.3} % ({} of {} impostor pairs; target {:.3} %), FNMR {:.2} % ({} of {} genuine pairs)",
        s.fmr_at_threshold,
        s.impostors_accepted,
        s.impostor_pairs,
        100.0 * info.target_fmr,
        s.fnmr_at_threshold,
        s.genuine_rejected,
        s.genuine_pairs
    )
    .map_err(io)?;
    for e in &s.errors_at_threshold {
        let what = if e.same { "false non-match" } else { "false match" };
        let d = e.distance.map(|d| format!("{d:.4}")).unwrap_or_else(|| "no face".into());
        writeln!(out, "  {what}: {} {} distance {d}", e.img_a, e.img_b).map_err(io)?;
    }
    writeln!(out, "best accuracy: {:.2} % at distance {:.4}", s.best_accuracy, s.best_threshold)
        .map_err(io)?;
    writeln!(out, "TAR at FMR 1 %: {:.2} %; TAR at FMR 0.1 %: {:.2} %", s.tar_at_fmr_1, s.tar_at_fmr_0_1)
        .map_err(io)?;
    writeln!(out, "EER: {:.2} %; ROC AUC: {:.5}", s.eer, s.auc).map_err(io)?;
    writeln!(out, "median detect+align+embed: {:.1} ms per image", s.median_ms_per_image).map_err(io)?;
    if let Some(f) = &s.folds {
        writeln!(
            out,
            "{}-fold accuracy (threshold from the other folds): {:.2} ± {:.2} %",
            f.folds, f.mean_accuracy, f.std_accuracy
        )
        .map_err(io)?;
    }
    if let Some(a) = &s.all_pairs {
        write_all_pairs(a, info, out)?;
    }
    Ok(())
}

fn write_all_pairs(
    a: &AllPairsSummary,
    info: &crate::ModelInfo,
    out: &mut dyn Write,
) -> Result<(), FaceError> {
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    writeln!(
        out,
        "all pairs of the file's images: {} images with a face, {} identities, {} genuine (same identity{}), {} impostor (cross identity) pairs",
        a.images,
        a.identities,
        a.genuine_pairs,
        if a.skipped_cross_fold > 0 {
            format!(", same fold; {} cross-fold same-identity pairs left out", a.skipped_cross_fold)
        } else {
            String::new()
        },
        a.impostor_pairs
    )
    .map_err(io)?;
    writeln!(
        out,
        "  at the configured threshold {:.4}: FMR {:.4} % ({} of {}; target {:.4} %, ratio {:.2}), FNMR {:.2} % ({} of {})",
        info.threshold_distance,
        a.fmr_at_threshold,
        a.impostors_accepted,
        a.impostor_pairs,
        100.0 * info.target_fmr,
        a.fmr_at_threshold / (100.0 * info.target_fmr),
        a.fnmr_at_threshold,
        a.genuine_rejected,
        a.genuine_pairs
    )
    .map_err(io)?;
    for p in &a.at_fmr {
        match p.threshold {
            Some(t) => writeln!(
                out,
                "  FMR {:e}: distance {:.4} ({} impostors at or below), FNMR {:.2} % on all same-identity pairs, {:.2} % on the file's genuine pairs",
                p.fmr, t, p.impostors_accepted, p.fnmr_all, p.fnmr_pairs
            ),
            None => writeln!(out, "  FMR {:e}: too few impostor pairs", p.fmr),
        }
        .map_err(io)?;
    }
    if let Some(h) = &a.held_out {
        writeln!(
            out,
            "{}-fold at target FMR {} (threshold from every cross-identity pair of the other folds' images):",
            h.folds.len(),
            h.target_fmr
        )
        .map_err(io)?;
        for f in &h.folds {
            writeln!(
                out,
                "  fold {}: distance {:.4} ({} of {} training impostors at or below); held-out pairs {:.2} % correct, false matches {}/{}, false non-matches {}/{}; held-out cross-identity FMR {:.4} % ({}/{})",
                f.fold,
                f.threshold,
                f.train_accepted,
                f.train_impostors,
                pct(f.correct, f.pairs),
                f.false_matches,
                f.impostor_pairs,
                f.false_non_matches,
                f.genuine_pairs,
                pct(f.cross_false_matches, f.cross_impostors),
                f.cross_false_matches,
                f.cross_impostors
            )
            .map_err(io)?;
        }
        writeln!(
            out,
            "  held-out accuracy {:.2} ± {:.2} %; realised FMR {:.3} % on the held-out pairs, {:.4} % on the held-out folds' cross-identity pairs (target {:.3} %)",
            h.mean_accuracy,
            h.std_accuracy,
            h.fmr_pairs,
            h.fmr_cross,
            100.0 * h.target_fmr
        )
        .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(dists: &[(Option<f32>, bool, i64)]) -> ScoredPairs {
        ScoredPairs {
            pairs: dists
                .iter()
                .map(|&(d, same, fold)| ScoredPair {
                    img_a: "a".into(),
                    img_b: "b".into(),
                    same,
                    fold: Some(fold),
                    distance: d,
                    second_cosine: None,
                })
                .collect(),
            images: 4,
            detect_failures: vec![],
            ms_per_image: vec![1.0, 3.0, 2.0],
            embeddings: HashMap::new(),
            second: HashMap::new(),
            second_cpu_ms: Vec::new(),
            document_style: false,
        }
    }

    #[test]
    fn summary_figures_on_known_distances() {
        let s = summarize(
            &scored(&[
                (Some(0.3), true, 0),
                (Some(0.5), true, 1),
                (Some(0.7), true, 0),
                (None, true, 1),
                (Some(0.6), false, 0),
                (Some(0.8), false, 1),
                (Some(0.9), false, 0),
                (Some(1.0), false, 1),
            ]),
            0.55,
        );
        // At 0.55: genuine 0.3, 0.5 accepted; all impostors rejected -> 6/8.
        assert!((s.accuracy - 75.0).abs() < 1e-9);
        assert!((s.best_accuracy - 75.0).abs() < 1e-9);
        assert_eq!(s.detect_fail_pairs, 1);
        // 4 genuine vs 4 impostor: 0.3,0.5 beat all 4; 0.7 beats 3; inf beats none -> 11/16.
        assert!((s.auc - 11.0 / 16.0).abs() < 1e-12);
        assert!((s.median_ms_per_image - 2.0).abs() < 1e-12);
        // FMR 1 % with 4 impostors allows none: genuine strictly below 0.6 -> 2/4.
        assert!((s.tar_at_fmr_1 - 50.0).abs() < 1e-9);
        assert_eq!(s.folds.as_ref().unwrap().folds, 2);
    }

    #[test]
    fn all_pairs_by_identity_and_fold() {
        let pair = |a: &str, b: &str, same, fold| ScoredPair {
            img_a: a.into(),
            img_b: b.into(),
            same,
            fold: Some(fold),
            distance: None,
            second_cosine: None,
        };
        let mut s = scored(&[]);
        s.pairs =
            vec![pair("A/1", "A/2", true, 0), pair("A/1", "B/1", false, 0), pair("C/1", "D/1", false, 1)];
        for (key, v) in [("A/1", 0.0f32), ("A/2", 0.1), ("B/1", 1.0), ("C/1", 3.0), ("D/1", 3.5)] {
            s.embeddings.insert(key.into(), Embedding(vec![v]));
        }
        let all = all_pair_scores(&s).unwrap();
        assert_eq!((all.images, all.identities, all.skipped_cross_fold), (5, 4, 0));
        assert_eq!(all.genuine_all().len(), 1);
        assert_eq!(all.impostor_all().len(), 9);
        let mut held_out_0 = all.impostor_without(1);
        held_out_0.sort_by(f32::total_cmp);
        assert!((held_out_0[0] - 0.9).abs() < 1e-6 && (held_out_0[1] - 1.0).abs() < 1e-6);
        assert_eq!(all.impostor_without(0), vec![0.5]);
        // 9 impostors, FMR 0.2 allows 1: halfway between 0.5 and 0.9.
        let (t, k) = threshold_at_fmr(&all.impostor_all(), 0.2).unwrap();
        assert!((t - 0.7).abs() < 1e-6 && k == 1);
        assert!(threshold_at_fmr(&all.impostor_all(), 0.1).is_none());
        let sum = all_pairs_summary(&s, &all, 0.95, 0.2);
        // At 0.95: impostors 0.5 and 0.9 accepted.
        assert_eq!((sum.impostors_accepted, sum.genuine_rejected), (2, 0));
        assert!(sum.held_out.is_none(), "one training impostor set is too small for FMR 0.2");
        assert!(
            all_pair_scores(&ScoredPairs {
                embeddings: [("x.jpg".to_string(), Embedding(vec![0.0]))].into(),
                ..s
            })
            .is_err()
        );
    }

    #[test]
    fn eer_of_separable_sets_is_zero() {
        assert_eq!(eer(&[0.1, 0.2], &[0.5, 0.6]), 0.0);
        assert!((eer(&[0.1, 0.6], &[0.5, 0.9]) - 0.5).abs() < 1e-12);
    }
}
