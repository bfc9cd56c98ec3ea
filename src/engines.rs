//! The engines as the service sees them: small synchronous traits, so tests can swap in fakes.
//!
//! The real implementations live in the `idverify-face` and `idverify-document` crates. Every
//! method here is CPU-bound and must be called off the async runtime (see `verify::Blocking`).

use std::sync::Arc;

use chrono::NaiveDate;
use image::RgbImage;

pub use idverify_document::{
    BlockCode, BlockError, DocumentField, DocumentScan, DocumentType, FieldConfidence, RequestedType,
};
pub use idverify_face::{Embedding, Face, FaceQuality, MatchScore, ModelInfo};

use crate::readiness::{ModelCheck, WarmUpFailure};

/// An engine failed internally (model error, not bad input): the request is answered with 500.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineFailure(pub String);

pub trait FaceAnalyzer: Send + Sync + 'static {
    /// All faces, largest first.
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, EngineFailure>;
    /// The portrait printed on an identity document, if any.
    fn find_portrait(&self, document: &RgbImage) -> Result<Option<Face>, EngineFailure>;
    fn embed(&self, image: &RgbImage, face: &Face) -> Result<Embedding, EngineFailure>;
    /// dlib's decision; [`FaceAnalyzer::needs_second`] says whether the fused score decides instead.
    fn compare(&self, a: &Embedding, b: &Embedding) -> MatchScore;
    /// Whether `dlib` (from `compare`) must be decided by [`FaceAnalyzer::fuse`] (the cascade's band).
    fn needs_second(&self, _dlib: &MatchScore) -> bool {
        false
    }
    /// The second recognizer's embedding (asked only when `needs_second`).
    fn embed_second(&self, _image: &RgbImage, _face: &Face) -> Result<Embedding, EngineFailure> {
        Err(EngineFailure("no second recognizer".into()))
    }
    /// The fused decision from dlib's score and both second embeddings.
    fn fuse(&self, dlib: &MatchScore, _a: &Embedding, _b: &Embedding) -> MatchScore {
        dlib.clone()
    }
    fn quality(&self, image: &RgbImage, face: &Face) -> FaceQuality;
    fn model_info(&self) -> ModelInfo;
    /// One tiny inference per loaded model, at start-up (see `readiness`).
    fn warm_up(&self) -> Result<Vec<ModelCheck>, WarmUpFailure>;
}

pub trait DocumentScanner: Send + Sync + 'static {
    fn scan(
        &self,
        image: &RgbImage,
        requested: RequestedType,
        today: NaiveDate,
    ) -> Result<DocumentScan, EngineFailure>;
    /// One tiny inference per loaded model, at start-up (see `readiness`).
    fn warm_up(&self) -> Result<Vec<ModelCheck>, WarmUpFailure>;
}

impl FaceAnalyzer for idverify_face::FaceEngine {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, EngineFailure> {
        idverify_face::FaceEngine::detect(self, image).map_err(|e| EngineFailure(e.to_string()))
    }
    fn find_portrait(&self, document: &RgbImage) -> Result<Option<Face>, EngineFailure> {
        idverify_face::FaceEngine::find_portrait(self, document).map_err(|e| EngineFailure(e.to_string()))
    }
    fn embed(&self, image: &RgbImage, face: &Face) -> Result<Embedding, EngineFailure> {
        idverify_face::FaceEngine::embed(self, image, face).map_err(|e| EngineFailure(e.to_string()))
    }
    fn compare(&self, a: &Embedding, b: &Embedding) -> MatchScore {
        idverify_face::FaceEngine::compare(self, a, b)
    }
    fn needs_second(&self, dlib: &MatchScore) -> bool {
        idverify_face::FaceEngine::needs_second(self, dlib)
    }
    fn embed_second(&self, image: &RgbImage, face: &Face) -> Result<Embedding, EngineFailure> {
        idverify_face::FaceEngine::embed_second(self, image, face).map_err(|e| EngineFailure(e.to_string()))
    }
    fn fuse(&self, dlib: &MatchScore, a: &Embedding, b: &Embedding) -> MatchScore {
        idverify_face::FaceEngine::fuse(self, dlib, a, b)
    }
    fn quality(&self, image: &RgbImage, face: &Face) -> FaceQuality {
        idverify_face::FaceEngine::quality(self, image, face)
    }
    fn model_info(&self) -> ModelInfo {
        idverify_face::FaceEngine::model_info(self)
    }
    /// The detector on a generated photo, then each recognizer on a face placed in it.
    fn warm_up(&self) -> Result<Vec<ModelCheck>, WarmUpFailure> {
        use idverify_face::FaceEngine as Real;
        let image = crate::bench::photo(320, 240);
        let face = crate::bench::synthetic_face(&image);
        let mut checks = vec![
            ModelCheck::run("face_detector", idverify_face::DETECTOR_FILE, || Real::detect(self, &image))?,
            ModelCheck::run("face_recognizer", idverify_face::RECOGNIZER_FILE, || {
                Real::embed(self, &image, &face)
            })?,
        ];
        if self.has_second() {
            checks.push(ModelCheck::run("face_recognizer_second", idverify_face::sface::SFACE_FILE, || {
                Real::embed_second(self, &image, &face)
            })?);
        }
        Ok(checks)
    }
}

impl DocumentScanner for idverify_document::DocumentEngine {
    fn scan(
        &self,
        image: &RgbImage,
        requested: RequestedType,
        today: NaiveDate,
    ) -> Result<DocumentScan, EngineFailure> {
        idverify_document::DocumentEngine::scan(self, image, requested, today)
            .map_err(|e| EngineFailure(e.to_string()))
    }
    /// The text detector on a generated page and both recognizers on a generated line. PDF417 is
    /// decoded in pure Rust: no model to check.
    fn warm_up(&self) -> Result<Vec<ModelCheck>, WarmUpFailure> {
        let page = crate::bench::document_page(640, 480);
        let line = crate::bench::line_crop(320);
        Ok(vec![
            ModelCheck::run("text_detector", idverify_document::DET_MODEL, || {
                self.detect_text(&page, idverify_document::DetectorPass::LowerPart)
            })?,
            ModelCheck::run("text_recognizer", idverify_document::REC_MODEL, || self.recognize_line(&line))?,
            ModelCheck::run("card_text_recognizer", idverify_document::VIZ_REC_MODEL, || {
                self.recognize_card_line(&line)
            })?,
        ])
    }
}

/// Both engines, shared by every request.
#[derive(Clone)]
pub struct Engines {
    pub face: Arc<dyn FaceAnalyzer>,
    pub document: Arc<dyn DocumentScanner>,
}

/// What the engines are loaded with (from the configuration, see `app::engine_settings`).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub models_dir: std::path::PathBuf,
    pub intra_threads: usize,
    pub sessions: usize,
    pub target_fmr: f64,
    pub recognizers: idverify_face::Recognizers,
    pub cross_check_passports: bool,
}

/// Every loaded model's warm-up inference, face engine first. Blocking: call it off the runtime.
pub fn warm_up(engines: &Engines) -> Result<Vec<ModelCheck>, WarmUpFailure> {
    let mut checks = engines.face.warm_up()?;
    checks.extend(engines.document.warm_up()?);
    Ok(checks)
}

/// Loads the real models. Fails with a clear message when `make models` has not run.
pub fn load(settings: &EngineSettings) -> anyhow::Result<Engines> {
    let face = load_face(settings)?;
    let document = load_document(settings)?;
    Ok(Engines { face: Arc::new(face), document: Arc::new(document) })
}

/// The face engine alone, as [`load`] builds it (the server and the CLI load it only through here).
pub fn load_face(settings: &EngineSettings) -> anyhow::Result<idverify_face::FaceEngine> {
    idverify_face::FaceEngine::load(&idverify_face::FaceEngineConfig {
        models_dir: settings.models_dir.clone(),
        intra_threads: settings.intra_threads,
        sessions: settings.sessions,
        target_fmr: settings.target_fmr,
        recognizers: settings.recognizers,
    })
    .map_err(|e| anyhow::anyhow!("face engine: {e}"))
}

/// The face engine as `idverify calibrate faces` needs it: dlib deciding, SFace loaded to embed.
pub fn load_face_for_calibration(settings: &EngineSettings) -> anyhow::Result<idverify_face::FaceEngine> {
    idverify_face::FaceEngine::load_for_calibration(&idverify_face::FaceEngineConfig {
        models_dir: settings.models_dir.clone(),
        intra_threads: settings.intra_threads,
        sessions: settings.sessions,
        target_fmr: settings.target_fmr,
        recognizers: settings.recognizers,
    })
    .map_err(|e| anyhow::anyhow!("face engine: {e}"))
}

/// The document engine alone, as [`load`] builds it.
pub fn load_document(settings: &EngineSettings) -> anyhow::Result<idverify_document::DocumentEngine> {
    idverify_document::DocumentEngine::load(&idverify_document::DocumentEngineConfig {
        models_dir: settings.models_dir.clone(),
        intra_threads: settings.intra_threads,
        sessions: settings.sessions,
        cross_check_passports: settings.cross_check_passports,
    })
    .map_err(|e| anyhow::anyhow!("document engine: {e}"))
}
