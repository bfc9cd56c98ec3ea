//! Face engine: YuNet detection, dlib ResNet v1 embeddings, calibrated comparison.
//!
//! Models (in `models_dir`): `face_detection_yunet_2023mar.onnx` and
//! `dlib_face_recognition_resnet_v1.onnx` (built by `scripts/dlib_to_onnx.py` from dlib's float
//! model file in PyPI `face-recognition-models`; input [N,3,150,150] RGB 0..255 with dlib's
//! normalization inside the graph, output [N,128]; cosine ≥ 0.99999 to dlib's own network on
//! identical chips, see `tests/engine.rs`).
//!
//! Pipeline: YuNet (letterbox 640, score 0.6, NMS 0.3) → 5 landmarks → least-squares similarity
//! onto the 150 px template (`align::TEMPLATE`) scaled by 0.95 and by 1.05 → bilinear warp →
//! embeddings of the two chips and their mirror images, averaged and scaled to unit length →
//! Euclidean distance (a function of the cosine) → calibrated confidence (`calibration.json`).

// `!(x >= limit)` is deliberate throughout: a NaN measure must fail the check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use std::path::PathBuf;

use idverify_onnx::ort::value::Tensor;
use idverify_onnx::{OnnxError, SessionPool};
use image::RgbImage;
use serde::Serialize;

pub mod align;
pub mod calibration;
pub mod eval;
pub mod eval_cascade;
pub mod fusion;
pub mod quality;
pub mod sface;
pub mod yunet;

pub use calibration::Calibration;
pub use fusion::Recognizers;

pub const DETECTOR_FILE: &str = "face_detection_yunet_2023mar.onnx";
pub const RECOGNIZER_FILE: &str = "dlib_face_recognition_resnet_v1.onnx";
pub const DETECTOR_NAME: &str = "yunet_2023mar";
pub const RECOGNIZER_NAME: &str = "dlib_face_recognition_resnet_v1";
pub const EMBEDDING_DIM: usize = 128;
/// Names the distance-producing recipe (weights, template, test-time augmentation...) in
/// calibration versions; bump it whenever a change alters what distances mean, then refit
/// `calibration.json`.
pub const PIPELINE_ID: &str = "p4";
/// Test-time augmentation: the face is embedded at these chip scales (1 = dlib's template), each
/// also mirrored, and the embeddings are averaged. Averaging over small scale changes evens out
/// the detector's landmark noise: on LFW dev, FNMR at FMR 0.001 fell from 4.5 % (scale 1 and its
/// mirror) to 3.2 %. Scale 1 itself is left out: adding it (six chips) gave the same accuracy at
/// the operating point for 50 % more recognizer time, also once embeddings were normalized
/// (BENCHMARKS.md, "Face engine").
pub const JITTER_SCALES: [f32; 2] = [0.95, 1.05];

#[derive(Clone, Debug)]
pub struct FaceEngineConfig {
    pub models_dir: PathBuf,
    pub intra_threads: usize,
    /// Sessions per model; concurrent calls beyond this wait.
    pub sessions: usize,
    /// Operating point: false-match rate whose distance threshold decides `is_match`.
    pub target_fmr: f64,
    /// dlib alone, SFace where dlib is unsure (cascade), or both on every pair.
    pub recognizers: Recognizers,
}

impl Default for FaceEngineConfig {
    fn default() -> Self {
        FaceEngineConfig {
            models_dir: PathBuf::from("models"),
            intra_threads: 1,
            sessions: 2,
            target_fmr: 0.001,
            recognizers: Recognizers::Cascade,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error(transparent)]
    Model(#[from] OnnxError),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("face cannot be aligned (degenerate landmarks)")]
    Alignment,
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("io: {0}")]
    Io(String),
    #[error("bad data: {0}")]
    Data(String),
}

impl From<idverify_onnx::ort::Error> for FaceError {
    fn from(e: idverify_onnx::ort::Error) -> Self {
        FaceError::Inference(e.to_string())
    }
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BoundingBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Face {
    pub bbox: BoundingBox,
    /// Image-left eye, image-right eye, nose tip, image-left and image-right mouth corners.
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence 0..1.
    pub score: f32,
}

#[derive(Clone, Debug)]
pub struct Embedding(pub Vec<f32>);

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchScore {
    /// Euclidean distance between the unit-length embeddings, 0 to 2 (√(2 − 2·cosine)); not on
    /// dlib's raw-descriptor scale, where < 0.6 is its "same person" rule.
    pub distance: f32,
    /// 100 · P(same | distance) from the shipped calibration.
    pub confidence: f32,
    /// Confidence at the distance threshold of the configured false-match rate.
    pub threshold: f32,
    pub is_match: bool,
    /// The recognizers whose scores decided: dlib alone, or dlib and SFace fused.
    pub recognizers: &'static [&'static str],
}

/// `MatchScore::recognizers` when dlib decided alone.
pub const DLIB_ALONE: &[&str] = &[RECOGNIZER_NAME];
/// `MatchScore::recognizers` when the fused dlib + SFace score decided.
pub const DLIB_AND_SFACE: &[&str] = &[RECOGNIZER_NAME, sface::SFACE_NAME];

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaceQuality {
    pub face_width_px: f32,
    pub sharpness: f32,
    pub brightness: f32,
    pub yaw_degrees: f32,
    pub roll_degrees: f32,
    pub reasons: Vec<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub detector: String,
    pub recognizer: String,
    pub calibration: String,
    pub target_fmr: f64,
    pub threshold_distance: f32,
    pub threshold_confidence: f32,
    /// `cascade`, `dlib` or `fused` (config `face_recognizers`).
    pub recognizers: Recognizers,
}

pub struct FaceEngine {
    detector: SessionPool,
    recognizer: SessionPool,
    calibration: Calibration,
    target_fmr: f64,
    threshold_distance: f32,
    recognizers: Recognizers,
    /// Loaded unless `recognizers` is dlib (or for fitting a calibration).
    second: Option<sface::SFace>,
    /// The fused threshold and the cascade band at `target_fmr`, unless `recognizers` is dlib.
    fused_point: Option<fusion::FusedOperatingPoint>,
}

/// The direction of the component-wise mean of embeddings (all of length [`EMBEDDING_DIM`]),
/// scaled to unit length. dlib's descriptors are not normalized; comparing directions (cosine)
/// instead of raw vectors raised LFW dev accuracy at the FMR 0.001 operating point from 98.37 % to
/// 99.00 % (TAR at FMR 0.1 %: 96.93 % to 98.07 %). A zero mean stays zero.
fn mean_direction(embeddings: &[Embedding]) -> Embedding {
    let mut mean = vec![0f32; EMBEDDING_DIM];
    for e in embeddings {
        for (m, v) in mean.iter_mut().zip(&e.0) {
            *m += v;
        }
    }
    let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt();
    if norm > 0.0 {
        mean.iter_mut().for_each(|m| *m /= norm);
    }
    Embedding(mean)
}

fn euclidean(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let d = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt();
    d.is_finite().then_some(d)
}

impl FaceEngine {
    pub fn load(cfg: &FaceEngineConfig) -> Result<FaceEngine, FaceError> {
        Self::load_with_calibration(cfg, Calibration::shipped()?)
    }

    /// Like [`FaceEngine::load`] with a calibration other than the shipped one.
    pub fn load_with_calibration(
        cfg: &FaceEngineConfig,
        calibration: Calibration,
    ) -> Result<FaceEngine, FaceError> {
        if !(cfg.target_fmr > 0.0 && cfg.target_fmr < 1.0) {
            return Err(FaceError::Config(format!("target_fmr must be in (0, 1), got {}", cfg.target_fmr)));
        }
        let pool = |model| SessionPool::load(&cfg.models_dir, model, cfg.sessions, cfg.intra_threads);
        let detector = pool(DETECTOR_FILE)?;
        let recognizer = pool(RECOGNIZER_FILE)?;
        let threshold_distance = calibration.threshold_for_fmr(cfg.target_fmr);
        let (second, fused_point) = match (cfg.recognizers, &calibration.fusion) {
            (Recognizers::Dlib, _) => (None, None),
            (_, Some(fusion)) => (
                Some(sface::SFace::load(&cfg.models_dir, cfg.sessions, cfg.intra_threads)?),
                Some(fusion.operating_point(cfg.target_fmr)),
            ),
            (mode, None) => {
                return Err(FaceError::Config(format!(
                    "face_recognizers = \"{}\" needs a calibration with the dlib + SFace fusion; {} has none \
                     (refit it with `idverify calibrate faces`, or set face_recognizers = \"dlib\")",
                    mode.as_str(),
                    calibration.version
                )));
            }
        };
        Ok(FaceEngine {
            detector,
            recognizer,
            calibration,
            target_fmr: cfg.target_fmr,
            threshold_distance,
            recognizers: cfg.recognizers,
            second,
            fused_point,
        })
    }

    /// dlib deciding alone, with SFace loaded to embed: what `calibration::fit` needs to fit the
    /// fusion (whatever the calibration holds).
    pub fn load_for_calibration(cfg: &FaceEngineConfig) -> Result<FaceEngine, FaceError> {
        let dlib_only = FaceEngineConfig { recognizers: Recognizers::Dlib, ..cfg.clone() };
        let mut engine = Self::load_with_calibration(&dlib_only, Calibration::shipped()?)?;
        engine.second = Some(sface::SFace::load(&cfg.models_dir, cfg.sessions, cfg.intra_threads)?);
        Ok(engine)
    }

    /// All faces, largest first. `image` is already EXIF-oriented RGB.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, FaceError> {
        let mut faces = self.detect_with_threshold(image, yunet::SCORE_THRESHOLD)?;
        sort_largest_first(&mut faces);
        Ok(faces)
    }

    /// Detection at a given score threshold, sorted by score.
    pub fn detect_with_threshold(&self, image: &RgbImage, threshold: f32) -> Result<Vec<Face>, FaceError> {
        if image.width() == 0 || image.height() == 0 {
            return Ok(Vec::new());
        }
        let lb = yunet::letterbox(image);
        let size = yunet::INPUT_SIZE as usize;
        let input = Tensor::from_array(([1usize, 3, size, size], lb.tensor))?;
        self.detector.with(|session| {
            let outputs = session.run(idverify_onnx::ort::inputs!["input" => input])?;
            let mut raw = Vec::with_capacity(3);
            for stride in yunet::STRIDES {
                let get = |kind: &str| -> Result<&[f32], FaceError> {
                    let name = format!("{kind}_{stride}");
                    let value = outputs
                        .get(&name)
                        .ok_or_else(|| FaceError::Inference(format!("detector output {name} missing")))?;
                    Ok(value.try_extract_tensor::<f32>()?.1)
                };
                raw.push(yunet::StrideOutput {
                    stride,
                    cls: get("cls")?,
                    obj: get("obj")?,
                    bbox: get("bbox")?,
                    kps: get("kps")?,
                });
            }
            Ok(yunet::decode(&raw, yunet::INPUT_SIZE, threshold, lb.inv_scale))
        })
    }

    /// The portrait on an ID document photo: normal pass, then a tighter/upscaled pass for small
    /// portraits (60-120 px wide on a phone photo of a passport) if nothing is found, then the page
    /// turned by each quarter turn (a card photographed sideways or upside down; the face is given
    /// in the coordinates of `document` as it is); prefers the largest face, with a bonus for the
    /// left half where ID-1 cards and passports put it.
    pub fn find_portrait(&self, document: &RgbImage) -> Result<Option<Face>, FaceError> {
        let upright = self.find_upright_portrait(document)?;
        if upright.as_ref().is_some_and(|f| f.score >= SURELY_UPRIGHT_SCORE && !is_sideways(f)) {
            return Ok(upright);
        }
        // The detector also finds faces lying on their side or upside down, with landmarks that do
        // not fit them (a match distance of 0.47 instead of 0.26 in the test), but less confidently
        // than the same face the right way up.
        let turned = self.find_turned_portrait(document)?;
        Ok(match (upright, turned) {
            (Some(u), Some(t)) => Some(if is_sideways(&u) || t.score > u.score { t } else { u }),
            (u, t) => u.or(t),
        })
    }

    /// The normal pass on the page turned by each quarter turn; the most confident portrait wins
    /// (the detector also finds some upside-down faces, with the mouth taken for the eyes, but
    /// less confidently than the same face the right way up).
    fn find_turned_portrait(&self, document: &RgbImage) -> Result<Option<Face>, FaceError> {
        let (w, h) = document.dimensions();
        if w < 32 || h < 32 {
            return Ok(None);
        }
        let mut best: Option<Face> = None;
        for turns in [1, 3, 2] {
            let turned = match turns {
                1 => image::imageops::rotate90(document),
                2 => image::imageops::rotate180(document),
                _ => image::imageops::rotate270(document),
            };
            let faces = self.detect(&turned)?.into_iter().filter(|f| !is_sideways(f)).collect();
            if let Some(face) = pick_portrait(faces, turned.width())
                && best.as_ref().is_none_or(|b| face.score > b.score)
            {
                best = Some(unturn_face(face, turns, w, h));
            }
        }
        Ok(best)
    }

    fn find_upright_portrait(&self, document: &RgbImage) -> Result<Option<Face>, FaceError> {
        let faces = self.detect(document)?;
        if !faces.is_empty() {
            return Ok(pick_portrait(faces, document.width()));
        }
        // Overlapping square tiles, each letterboxed to 640 on its own, so a small portrait gets
        // more network pixels. Tiles shrink level by level (0.6x) down to MIN_TILE px, stopping at
        // the first level that finds a face: a 60 px portrait on a 4000 px photo ends up ~45 px.
        let (w, h) = document.dimensions();
        if w < 32 || h < 32 {
            return Ok(None);
        }
        const MIN_TILE: u32 = 800;
        let mut tile = (w.max(h) as f32 * 0.6) as u32;
        loop {
            let mut all = Vec::new();
            for (x, y) in tile_origins(w, h, tile) {
                let crop = image::imageops::crop_imm(document, x, y, tile.min(w), tile.min(h)).to_image();
                for f in self.detect_with_threshold(&crop, yunet::SCORE_THRESHOLD)? {
                    all.push(shift_face(f, x as f32, y as f32));
                }
            }
            if !all.is_empty() {
                let merged = yunet::nms(all, yunet::NMS_IOU);
                return Ok(pick_portrait(merged, w));
            }
            if tile <= MIN_TILE {
                return Ok(None);
            }
            tile = ((tile as f32 * 0.6) as u32).max(MIN_TILE);
        }
    }

    /// The aligned 150 px chip (interleaved RGB 0..255) for a detected face.
    pub fn align(&self, image: &RgbImage, face: &Face) -> Result<Vec<[f32; 3]>, FaceError> {
        align::align_chip(image, &face.landmarks).ok_or(FaceError::Alignment)
    }

    /// Similarity-align (least squares, 4 dof) to dlib's 150px template, bilinear warp, embed.
    /// The embedding is the unit-length mean over the chip at each of [`JITTER_SCALES`] and their
    /// mirror images (test-time augmentation, one recognizer batch).
    pub fn embed(&self, image: &RgbImage, face: &Face) -> Result<Embedding, FaceError> {
        let size = align::CHIP_SIZE as usize;
        let mut chips = Vec::with_capacity(2 * JITTER_SCALES.len());
        for scale in JITTER_SCALES {
            let template = align::scaled_template(scale);
            let chip = align::align_chip_to(image, &face.landmarks, &template).ok_or(FaceError::Alignment)?;
            let mirrored: Vec<[f32; 3]> =
                chip.chunks_exact(size).flat_map(|row| row.iter().rev().copied()).collect();
            chips.push(chip);
            chips.push(mirrored);
        }
        let refs: Vec<&[[f32; 3]]> = chips.iter().map(Vec::as_slice).collect();
        let embeddings = self.embed_chips(&refs)?;
        Ok(mean_direction(&embeddings))
    }

    /// Embeds an aligned 150×150 chip (interleaved RGB 0..255, row-major), as dlib does.
    pub fn embed_chip(&self, chip: &[[f32; 3]]) -> Result<Embedding, FaceError> {
        Ok(self.embed_chips(&[chip])?.remove(0))
    }

    /// Embeds several aligned chips in one batch.
    pub fn embed_chips(&self, chips: &[&[[f32; 3]]]) -> Result<Vec<Embedding>, FaceError> {
        let n = (align::CHIP_SIZE * align::CHIP_SIZE) as usize;
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        let mut planar = vec![0f32; 3 * n * chips.len()];
        for (chip, dst) in chips.iter().zip(planar.chunks_exact_mut(3 * n)) {
            if chip.len() != n {
                return Err(FaceError::Data(format!("chip must have {n} pixels, got {}", chip.len())));
            }
            for (i, p) in chip.iter().enumerate() {
                dst[i] = p[0];
                dst[n + i] = p[1];
                dst[2 * n + i] = p[2];
            }
        }
        let size = align::CHIP_SIZE as usize;
        let input = Tensor::from_array(([chips.len(), 3, size, size], planar))?;
        let values = self.recognizer.with(|session| -> Result<Vec<f32>, FaceError> {
            let outputs = session.run(idverify_onnx::ort::inputs!["input" => input])?;
            Ok(outputs[0].try_extract_tensor::<f32>()?.1.to_vec())
        })?;
        if values.len() != EMBEDDING_DIM * chips.len() || values.iter().any(|v| !v.is_finite()) {
            return Err(FaceError::Inference(format!("recognizer returned {} values", values.len())));
        }
        Ok(values.chunks_exact(EMBEDDING_DIM).map(|v| Embedding(v.to_vec())).collect())
    }

    pub fn compare(&self, a: &Embedding, b: &Embedding) -> MatchScore {
        let threshold = self.calibration.confidence(self.threshold_distance);
        match euclidean(&a.0, &b.0) {
            Some(distance) => MatchScore {
                distance,
                confidence: self.calibration.confidence(distance),
                threshold,
                is_match: distance <= self.threshold_distance,
                recognizers: DLIB_ALONE,
            },
            // Mismatched or corrupt embeddings never match.
            None => MatchScore {
                distance: f32::MAX,
                confidence: 0.0,
                threshold,
                is_match: false,
                recognizers: DLIB_ALONE,
            },
        }
    }

    /// Whether dlib's score `dlib` (from [`FaceEngine::compare`]) should be decided by the fused
    /// score: never with `dlib`, always with `fused`, inside the uncertainty band with `cascade`.
    pub fn needs_second(&self, dlib: &MatchScore) -> bool {
        match (&self.fused_point, self.recognizers) {
            (None, _) | (_, Recognizers::Dlib) => false,
            (Some(_), Recognizers::Fused) => true,
            (Some(point), Recognizers::Cascade) => fusion::in_band(point, dlib.distance),
        }
    }

    /// SFace's embedding of a detected face (Err when SFace is not loaded).
    pub fn embed_second(&self, image: &RgbImage, face: &Face) -> Result<Embedding, FaceError> {
        let sface = self.second.as_ref().ok_or_else(|| FaceError::Config("SFace is not loaded".into()))?;
        sface.embed(image, face)
    }

    /// The fused decision for a pair dlib scored as `dlib`, given both faces' SFace embeddings.
    pub fn fuse(&self, dlib: &MatchScore, a: &Embedding, b: &Embedding) -> MatchScore {
        let (Some(point), Some(fusion)) = (&self.fused_point, &self.calibration.fusion) else {
            return dlib.clone();
        };
        let threshold = fusion.confidence(point.threshold);
        match sface::cosine(a, b).filter(|_| dlib.distance.is_finite() && dlib.distance < f32::MAX) {
            Some(cosine) => {
                let score = fusion.score(dlib.distance, cosine);
                MatchScore {
                    distance: dlib.distance,
                    confidence: fusion.confidence(score),
                    threshold,
                    is_match: score >= point.threshold,
                    recognizers: DLIB_AND_SFACE,
                }
            }
            None => MatchScore {
                confidence: 0.0,
                threshold,
                is_match: false,
                recognizers: DLIB_AND_SFACE,
                ..*dlib
            },
        }
    }

    /// The fused operating point in use (None with `face_recognizers = "dlib"`).
    pub fn fused_operating_point(&self) -> Option<fusion::FusedOperatingPoint> {
        self.fused_point
    }

    /// Whether SFace is loaded (embeds with [`FaceEngine::embed_second`]).
    pub fn has_second(&self) -> bool {
        self.second.is_some()
    }

    pub fn quality(&self, image: &RgbImage, face: &Face) -> FaceQuality {
        let chip = align::align_chip(image, &face.landmarks);
        quality::assess(face.bbox.width, chip.as_deref(), &face.landmarks)
    }

    pub fn model_info(&self) -> ModelInfo {
        ModelInfo {
            detector: DETECTOR_NAME.into(),
            recognizer: RECOGNIZER_NAME.into(),
            calibration: self.calibration.version.clone(),
            target_fmr: self.target_fmr,
            threshold_distance: self.threshold_distance,
            threshold_confidence: self.calibration.confidence(self.threshold_distance),
            recognizers: self.recognizers,
        }
    }

    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }
}

/// Detector score from which a portrait found on the page as it is is taken to be upright. On the
/// 23 MRZ dev documents with a portrait, upright portraits scored 0.915 to 0.939, the same pages
/// turned upside down 0.67 to 0.894 (or no face): below this, the turned pages are searched too
/// (`portraits_score_higher_upright_than_upside_down_on_the_dev_documents` in `tests/engine.rs`).
const SURELY_UPRIGHT_SCORE: f32 = 0.905;

/// The eye line is steeper than 45°: the face lies on its side (or upside down) in the image.
fn is_sideways(face: &Face) -> bool {
    quality::pose_degrees(&face.landmarks).1.abs() > 45.0
}

/// A face found on a `w` x `h` image turned clockwise by `turns` quarter turns, in the coordinates
/// of the image as it was. The landmarks keep their order (the same eye stays first), so alignment
/// turns the chip upright.
fn unturn_face(mut f: Face, turns: usize, w: u32, h: u32) -> Face {
    let unturn = |p: [f32; 2]| {
        let mut p = p;
        for i in (0..turns % 4).rev() {
            // Turn i took (x, y) on an image `hi` high to (hi - y, x).
            let hi = if i % 2 == 0 { h } else { w } as f32;
            p = [p[1], hi - p[0]];
        }
        p
    };
    let b = f.bbox;
    let corners = [[b.x, b.y], [b.x + b.width, b.y + b.height]].map(unturn);
    let (x0, x1) = (corners[0][0].min(corners[1][0]), corners[0][0].max(corners[1][0]));
    let (y0, y1) = (corners[0][1].min(corners[1][1]), corners[0][1].max(corners[1][1]));
    f.bbox = BoundingBox { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
    for lm in f.landmarks.iter_mut() {
        *lm = unturn(*lm);
    }
    f
}

/// `f` moved by (dx, dy): maps a face found in a crop or padded copy back to the original image.
pub(crate) fn shift_face(mut f: Face, dx: f32, dy: f32) -> Face {
    f.bbox.x += dx;
    f.bbox.y += dy;
    for lm in f.landmarks.iter_mut() {
        lm[0] += dx;
        lm[1] += dy;
    }
    f
}

/// Top-left corners of `tile`-sized squares covering a `w`×`h` image with at least 25 % overlap.
fn tile_origins(w: u32, h: u32, tile: u32) -> Vec<(u32, u32)> {
    let axis = |len: u32| -> Vec<u32> {
        if len <= tile {
            return vec![0];
        }
        let span = len - tile;
        let steps = span.div_ceil((tile * 3 / 4).max(1));
        (0..=steps).map(|i| (span as u64 * i as u64 / steps as u64) as u32).collect()
    };
    let xs = axis(w);
    axis(h).into_iter().flat_map(|y| xs.iter().map(move |&x| (x, y))).collect()
}

fn sort_largest_first(faces: &mut [Face]) {
    faces.sort_by(|a, b| (b.bbox.width * b.bbox.height).total_cmp(&(a.bbox.width * a.bbox.height)));
}

/// Largest face wins; faces in the left half get a 1.5× area bonus (portrait area of ID-1 cards
/// and passport data pages), so a faded ghost image on the right loses to the main portrait.
fn pick_portrait(faces: Vec<Face>, image_width: u32) -> Option<Face> {
    let weight = |f: &Face| {
        let cx = f.bbox.x + f.bbox.width / 2.0;
        let bonus = if cx < image_width as f32 / 2.0 { 1.5 } else { 1.0 };
        f.bbox.width * f.bbox.height * bonus * f.score
    };
    faces.into_iter().max_by(|a, b| weight(a).total_cmp(&weight(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_sync() {
        assert_send_sync::<FaceEngine>();
        assert_send_sync::<Face>();
        assert_send_sync::<Embedding>();
        assert_send_sync::<FaceError>();
    }

    #[test]
    fn mean_direction_is_the_unit_length_component_wise_mean() {
        let a = Embedding([1.0; EMBEDDING_DIM].to_vec());
        let mut b = vec![3.0; EMBEDDING_DIM];
        b[5] = -1.0;
        // Mean: 2 everywhere but 0 at index 5, so length 2·√127.
        let mean = mean_direction(&[a.clone(), Embedding(b)]);
        assert!((mean.0[0] - 1.0 / 127f32.sqrt()).abs() < 1e-7);
        assert_eq!(mean.0[5], 0.0);
        assert_eq!(mean.0.len(), EMBEDDING_DIM);
        assert!((mean.0.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-6);
        // Opposite embeddings cancel out: zero, not NaN.
        let minus_a = Embedding(a.0.iter().map(|v| -v).collect());
        assert!(mean_direction(&[a, minus_a]).0.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn euclidean_rejects_mismatch() {
        assert_eq!(euclidean(&[0.0, 3.0], &[4.0, 0.0]), Some(5.0));
        assert_eq!(euclidean(&[0.0], &[4.0, 0.0]), None);
        assert_eq!(euclidean(&[f32::NAN], &[0.0]), None);
    }

    #[test]
    fn tiles_cover_the_image_with_overlap() {
        assert_eq!(tile_origins(500, 400, 800), vec![(0, 0)]);
        // 2000 wide, tile 800: span 1200, step <= 600 -> 2 steps: 0, 600, 1200.
        let t = tile_origins(2000, 800, 800);
        assert_eq!(t, vec![(0, 0), (600, 0), (1200, 0)]);
        let t = tile_origins(4000, 3000, 800);
        assert!(t.iter().all(|&(x, y)| x + 800 <= 4000 && y + 800 <= 3000));
        assert!(t.contains(&(3200, 2200)) && t.contains(&(0, 0)));
    }

    #[test]
    fn faces_found_on_a_turned_page_map_back_to_the_page() {
        // One clockwise quarter turn takes (x, y) on a page `h` high to (h - y, x).
        let turn = |p: [f32; 2], h: f32| [h - p[1], p[0]];
        let (w, h) = (400u32, 300u32);
        let on_page = [[100.0, 50.0], [140.0, 52.0], [120.0, 80.0], [105.0, 100.0], [135.0, 101.0]];
        for turns in 1..4usize {
            let mut points = on_page;
            let (mut pw, mut ph) = (w as f32, h as f32);
            for _ in 0..turns {
                points = points.map(|p| turn(p, ph));
                std::mem::swap(&mut pw, &mut ph);
            }
            let xs = points.map(|p| p[0]);
            let ys = points.map(|p| p[1]);
            let (x0, y0) =
                (xs.iter().copied().fold(f32::MAX, f32::min), ys.iter().copied().fold(f32::MAX, f32::min));
            let (x1, y1) =
                (xs.iter().copied().fold(f32::MIN, f32::max), ys.iter().copied().fold(f32::MIN, f32::max));
            let found = Face {
                bbox: BoundingBox { x: x0, y: y0, width: x1 - x0, height: y1 - y0 },
                landmarks: points,
                score: 0.9,
            };
            let back = unturn_face(found, turns, w, h);
            for (a, b) in back.landmarks.iter().zip(on_page.iter()) {
                assert!((a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3, "{turns}: {a:?} vs {b:?}");
            }
            let expected = BoundingBox { x: 100.0, y: 50.0, width: 40.0, height: 51.0 };
            assert!(
                (back.bbox.x - expected.x).abs() < 1e-3 && (back.bbox.y - expected.y).abs() < 1e-3,
                "{turns}"
            );
            assert!((back.bbox.width - expected.width).abs() < 1e-3, "{turns}: {:?}", back.bbox);
            assert!((back.bbox.height - expected.height).abs() < 1e-3, "{turns}: {:?}", back.bbox);
        }
    }

    #[test]
    fn portrait_prefers_left_half_when_sizes_are_close() {
        let f = |x: f32, w: f32| Face {
            bbox: BoundingBox { x, y: 0.0, width: w, height: w },
            landmarks: [[0.0; 2]; 5],
            score: 0.9,
        };
        let picked = pick_portrait(vec![f(600.0, 100.0), f(50.0, 90.0)], 1000).unwrap();
        assert_eq!(picked.bbox.x, 50.0);
        let picked = pick_portrait(vec![f(600.0, 200.0), f(50.0, 90.0)], 1000).unwrap();
        assert_eq!(picked.bbox.x, 600.0);
    }
}
