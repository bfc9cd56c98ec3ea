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

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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
}

#[derive(Clone, Debug)]
pub struct ScoredPairs {
    pub pairs: Vec<ScoredPair>,
    pub images: usize,
    /// Image keys (file names; `doc:` prefix for document-style renders) where no face was found.
    pub detect_failures: Vec<String>,
    /// detect + align + embed time per image, milliseconds.
    pub ms_per_image: Vec<f64>,
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
    pub best_accuracy: f64,
    pub best_threshold: f64,
    pub tar_at_fmr_1: f64,
    pub tar_at_fmr_0_1: f64,
    pub eer: f64,
    pub auc: f64,
    pub median_ms_per_image: f64,
    pub folds: Option<FoldFigure>,
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

/// One image's embedding plus the time spent detecting, aligning and embedding it.
fn embed_image(
    engine: &FaceEngine,
    path: &Path,
    document: bool,
    key: &str,
) -> Result<(Option<Embedding>, f64), FaceError> {
    let image = load_oriented_rgb(path)?;
    if document {
        let Some(face) = dataset_face(engine, &image)? else {
            return Ok((None, 0.0));
        };
        let width = 75.0 + (fnv(key) % 26) as f32;
        let doc = synthetic_document(&image, &face, width, fnv(key))?;
        let start = Instant::now();
        let found = engine.find_portrait(&doc)?;
        let emb = found.map(|f| engine.embed(&doc, &f)).transpose()?;
        return Ok((emb, start.elapsed().as_secs_f64() * 1000.0));
    }
    let start = Instant::now();
    let face = dataset_face(engine, &image)?;
    let emb = face.map(|f| engine.embed(&image, &f)).transpose()?;
    Ok((emb, start.elapsed().as_secs_f64() * 1000.0))
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
    let results: Mutex<HashMap<String, (Option<Embedding>, f64)>> = Mutex::new(HashMap::new());
    let first_error: Mutex<Option<FaceError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
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
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    let mut detect_failures = Vec::new();
    let mut ms = Vec::new();
    for (key, _, _) in &jobs {
        match results.get(key) {
            Some((Some(_), t)) => ms.push(*t),
            _ => {
                writeln!(out, "detect_fail {key}").map_err(io)?;
                detect_failures.push(key.clone());
            }
        }
    }
    let emb = |key: &str| results.get(key).and_then(|r| r.0.as_ref());
    let pairs = rows
        .iter()
        .map(|row| {
            let key_a = if document_style { format!("doc:{}", row.img_a) } else { row.img_a.clone() };
            let distance = match (emb(&key_a), emb(&row.img_b)) {
                (Some(a), Some(b)) => Some(engine.compare(a, b).distance),
                _ => None,
            };
            ScoredPair {
                img_a: row.img_a.clone(),
                img_b: row.img_b.clone(),
                same: row.same,
                fold: row.fold,
                distance,
            }
        })
        .collect();
    Ok(ScoredPairs { pairs, images: jobs.len(), detect_failures, ms_per_image: ms })
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
fn tar_at_fmr(genuine: &[f64], sorted_impostor: &[f64], fmr: f64) -> f64 {
    if genuine.is_empty() || sorted_impostor.is_empty() {
        return 0.0;
    }
    let k = (fmr * sorted_impostor.len() as f64).floor() as usize;
    let limit = sorted_impostor[k.min(sorted_impostor.len() - 1)];
    genuine.iter().filter(|&&d| d < limit).count() as f64 / genuine.len() as f64
}

/// Equal error rate: where FMR (impostor d ≤ t) meets FNMR (genuine d > t).
fn eer(genuine: &[f64], impostor: &[f64]) -> f64 {
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
    let fmr_t = impostor.iter().filter(|&&d| d <= t).count() as f64 / impostor.len().max(1) as f64;
    let fnmr_t = genuine.iter().filter(|&&d| d > t).count() as f64 / genuine.len().max(1) as f64;
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
        best_accuracy: 100.0 * best_acc,
        best_threshold: best_t,
        tar_at_fmr_1: 100.0 * tar_at_fmr(&genuine, &impostor, 0.01),
        tar_at_fmr_0_1: 100.0 * tar_at_fmr(&genuine, &impostor, 0.001),
        eer: 100.0 * eer(&genuine, &impostor),
        auc: auc(&genuine, &impostor),
        median_ms_per_image: median(&scored.ms_per_image),
        folds,
    }
}

/// Runs the evaluation and prints the report; the last line is
/// `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=…` (percentages; detect_fail counts images).
pub fn run(
    engine: &FaceEngine,
    pairs_csv: &Path,
    document_style: bool,
    out: &mut dyn Write,
) -> Result<EvalSummary, FaceError> {
    let scored = score_pairs(engine, pairs_csv, document_style, out)?;
    let info = engine.model_info();
    let s = summarize(&scored, info.threshold_distance);
    write_report(&s, pairs_csv, document_style, &info, out)?;
    Ok(s)
}

/// Prints a summary; the last line is `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=…`.
pub fn write_report(
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
        "configured threshold: distance {:.4} (target FMR {}, calibration {})",
        s.threshold_distance, info.target_fmr, info.calibration
    )
    .map_err(io)?;
    writeln!(
        out,
        "accuracy at threshold: {:.2} % (FMR {:.2} %, FNMR {:.2} %)",
        s.accuracy, s.fmr_at_threshold, s.fnmr_at_threshold
    )
    .map_err(io)?;
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
    writeln!(
        out,
        "accuracy={:.2} tar_at_fmr_0.1={:.2} eer={:.2} detect_fail={}",
        s.accuracy, s.tar_at_fmr_0_1, s.eer, s.detect_fail_images
    )
    .map_err(io)?;
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
                })
                .collect(),
            images: 4,
            detect_failures: vec![],
            ms_per_image: vec![1.0, 3.0, 2.0],
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
    fn eer_of_separable_sets_is_zero() {
        assert_eq!(eer(&[0.1, 0.2], &[0.5, 0.6]), 0.0);
        assert!((eer(&[0.1, 0.6], &[0.5, 0.9]) - 0.5).abs() < 1e-12);
    }
}
