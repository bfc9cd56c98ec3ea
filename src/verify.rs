//! The use cases: verify, scan, detect, compare.
//!
//! Each request is admitted through a bounded gate (503 when the engines are saturated instead
//! of an unbounded queue), its images are fetched and decoded once, and the engines run on the
//! blocking pool, never on a tokio worker. Verify fans out with `tokio::join!`, then decides the
//! verdict here ([`judge`]), so the HTTP layer only maps the outcome to the wire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{Datelike, NaiveDate};
use idverify_objects::{ObjectError, ObjectStore, S3Ref};
use image::RgbImage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engines::{
    DocumentScan, Embedding, EngineFailure, Engines, Face, FaceQuality, MatchScore, ModelInfo, RequestedType,
};
use crate::imaging::{self, ImageError, ImageLimits};
use crate::telemetry::{Gauge, GaugeGuard, Metrics};
use crate::verdict::{self, DetectionSummary, DocumentSummary, MatchSummary, Verdict};

/// Where an image comes from: bytes in the request, or an object uploaded earlier.
#[derive(Debug, Clone)]
pub enum ImageInput {
    Bytes(Bytes),
    S3(S3Ref),
}

#[derive(Debug)]
pub struct VerifyInput {
    pub document: ImageInput,
    pub face: ImageInput,
    pub document_type: RequestedType,
}

/// Which image of a request. The service names an image by its role; the HTTP layer names it by
/// its wire field (`ImageSlot::field_name`, in `http::dto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSlot {
    /// The identity document (verify, scan).
    Document,
    /// The selfie compared with the document portrait (verify).
    Selfie,
    /// The first image of a face comparison.
    Source,
    /// The second image of a face comparison.
    Target,
    /// The one image of a face detection.
    Photo,
}

impl ImageSlot {
    pub const ALL: [ImageSlot; 5] =
        [ImageSlot::Document, ImageSlot::Selfie, ImageSlot::Source, ImageSlot::Target, ImageSlot::Photo];
}

#[derive(Debug, Clone)]
pub struct DetectionOutcome {
    /// Largest first.
    pub faces: Vec<Face>,
    /// Quality of the largest face.
    pub quality: Option<FaceQuality>,
}

#[derive(Debug, Clone)]
pub enum MatchOutcome {
    Compared {
        score: MatchScore,
        source_face: Face,
        target_face: Face,
    },
    /// Nothing was compared: this image had no face (the document: no portrait). The HTTP layer
    /// words it as the block error, since the words name the image's request field.
    NoFace(ImageSlot),
}

#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    pub document: DocumentScan,
    pub detection: DetectionOutcome,
    pub matching: MatchOutcome,
    pub model: ModelInfo,
    /// Decided here, from the unrounded values above.
    pub verdict: Verdict,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("engines saturated")]
    Overloaded,
    #[error("{slot:?} image: {error}")]
    Image { slot: ImageSlot, error: ImageError },
    #[error("S3 object not readable by this organization")]
    S3Forbidden,
    #[error("S3 object larger than the limit of {limit} bytes")]
    S3TooLarge { limit: u64 },
    #[error("S3 is not configured on this server")]
    S3NotConfigured,
    #[error("S3 unavailable: {0}")]
    S3Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<EngineFailure> for ServiceError {
    fn from(e: EngineFailure) -> Self {
        ServiceError::Internal(e.0)
    }
}

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub limits: ImageLimits,
    pub max_in_flight: usize,
    pub queue_wait: Duration,
    pub min_age: u32,
}

pub struct VerifyService {
    engines: Engines,
    objects: Option<ObjectStore>,
    gate: Arc<Semaphore>,
    settings: ServiceSettings,
    metrics: Arc<Metrics>,
}

/// A request's room in the engines, held until it is answered (or cut).
struct Admitted {
    _permit: OwnedSemaphorePermit,
    _in_flight: GaugeGuard,
}

/// A decoded, upright image shared by the tasks of one request.
type Shared = Arc<RgbImage>;

impl VerifyService {
    pub fn new(
        engines: Engines,
        objects: Option<ObjectStore>,
        settings: ServiceSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let gate = Arc::new(Semaphore::new(settings.max_in_flight));
        VerifyService { engines, objects, gate, settings, metrics }
    }

    pub fn model_info(&self) -> ModelInfo {
        self.engines.face.model_info()
    }

    pub async fn verify(&self, org_id: &str, input: VerifyInput) -> Result<VerifyOutcome, ServiceError> {
        let _permit = self.admit().await?;
        let (document_image, selfie) = tokio::try_join!(
            self.load(org_id, ImageSlot::Document, input.document),
            self.load(org_id, ImageSlot::Selfie, input.face),
        )?;
        let today = today();
        let (scan, selfie_faces, portrait) = tokio::join!(
            self.scan_image(document_image.clone(), input.document_type, today),
            self.detect_and_embed(selfie.clone()),
            self.portrait_and_embed(document_image.clone()),
        );
        let document = scan?;
        let (detection, selfie_embedding) = selfie_faces?;
        let portrait = portrait?;
        let matching = match (portrait, selfie_embedding) {
            (None, _) => MatchOutcome::NoFace(ImageSlot::Document),
            (Some(_), None) => MatchOutcome::NoFace(ImageSlot::Selfie),
            (Some((portrait_face, portrait_embedding)), Some(selfie_embedding)) => {
                let selfie_face = detection.faces[0].clone();
                let score = self
                    .match_score(
                        (&document_image, &portrait_face, &portrait_embedding),
                        (&selfie, &selfie_face, &selfie_embedding),
                    )
                    .await?;
                MatchOutcome::Compared { score, source_face: portrait_face, target_face: selfie_face }
            }
        };
        let verdict = judge(&document, &detection, &matching);
        Ok(VerifyOutcome { document, detection, matching, model: self.engines.face.model_info(), verdict })
    }

    pub async fn scan(
        &self,
        org_id: &str,
        image: ImageInput,
        requested: RequestedType,
    ) -> Result<DocumentScan, ServiceError> {
        let _permit = self.admit().await?;
        let document = self.load(org_id, ImageSlot::Document, image).await?;
        self.scan_image(document, requested, today()).await
    }

    pub async fn detect(&self, org_id: &str, image: ImageInput) -> Result<DetectionOutcome, ServiceError> {
        let _permit = self.admit().await?;
        let image = self.load(org_id, ImageSlot::Photo, image).await?;
        Ok(self.detect_and_embed_inner(image, false).await?.0)
    }

    pub async fn compare(
        &self,
        org_id: &str,
        source: ImageInput,
        target: ImageInput,
    ) -> Result<MatchOutcome, ServiceError> {
        let _permit = self.admit().await?;
        let (source, target) = tokio::try_join!(
            self.load(org_id, ImageSlot::Source, source),
            self.load(org_id, ImageSlot::Target, target),
        )?;
        let (found_source, found_target) =
            tokio::join!(self.any_face_and_embed(source.clone()), self.any_face_and_embed(target.clone()));
        Ok(match (found_source?, found_target?) {
            (None, _) => MatchOutcome::NoFace(ImageSlot::Source),
            (_, None) => MatchOutcome::NoFace(ImageSlot::Target),
            (Some((source_face, a)), Some((target_face, b))) => {
                let score =
                    self.match_score((&source, &source_face, &a), (&target, &target_face, &b)).await?;
                MatchOutcome::Compared { score, source_face, target_face }
            }
        })
    }

    /// dlib's decision; inside the cascade's uncertainty band (or always with `fused`) the second
    /// recognizer embeds both faces, in parallel, and the fused score decides.
    async fn match_score(
        &self,
        a: (&Shared, &Face, &Embedding),
        b: (&Shared, &Face, &Embedding),
    ) -> Result<MatchScore, ServiceError> {
        let dlib = self.engines.face.compare(a.2, b.2);
        if !self.engines.face.needs_second(&dlib) {
            self.metrics.count_face_decision(dlib.recognizers);
            return Ok(dlib);
        }
        let embed = |image: &Shared, face: &Face| {
            let (engine, image, face) = (self.engines.face.clone(), image.clone(), face.clone());
            self.blocking("face_embed_second", move || engine.embed_second(&image, &face))
        };
        let (second_a, second_b) = tokio::try_join!(embed(a.0, a.1), embed(b.0, b.1))?;
        let fused = self.engines.face.fuse(&dlib, &second_a, &second_b);
        self.metrics.count_face_decision(fused.recognizers);
        Ok(fused)
    }

    /// Waits a bounded time for room in the engines; past that the caller gets 503. The request
    /// counts in `idverify_requests_queued` while it waits, then in `idverify_requests_in_flight`.
    async fn admit(&self) -> Result<Admitted, ServiceError> {
        let admitted = |permit| Admitted { _permit: permit, _in_flight: self.metrics.hold(Gauge::InFlight) };
        if let Ok(permit) = self.gate.clone().try_acquire_owned() {
            return Ok(admitted(permit));
        }
        let _queued = self.metrics.hold(Gauge::Queued);
        match tokio::time::timeout(self.settings.queue_wait, self.gate.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(admitted(permit)),
            _ => {
                self.metrics.count_overload();
                Err(ServiceError::Overloaded)
            }
        }
    }

    async fn load(&self, org_id: &str, slot: ImageSlot, input: ImageInput) -> Result<Shared, ServiceError> {
        let bytes = match input {
            ImageInput::Bytes(bytes) => bytes,
            ImageInput::S3(reference) => {
                let objects = self.objects.as_ref().ok_or(ServiceError::S3NotConfigured)?;
                let started = Instant::now();
                let bytes = objects.read_for_org(org_id, &reference).await.map_err(|e| match e {
                    ObjectError::Forbidden => ServiceError::S3Forbidden,
                    ObjectError::TooLarge { .. } => {
                        ServiceError::S3TooLarge { limit: self.settings.limits.max_bytes }
                    }
                    ObjectError::Unavailable(reason) => ServiceError::S3Unavailable(reason),
                    other => ServiceError::Internal(other.to_string()),
                })?;
                self.metrics.observe_stage("s3_read", started.elapsed());
                Bytes::from(bytes)
            }
        };
        let limits = self.settings.limits;
        let image = self
            .blocking("decode", move || Ok(imaging::decode(&bytes, limits)))
            .await?
            .map_err(|error| ServiceError::Image { slot, error })?;
        Ok(Arc::new(image))
    }

    async fn scan_image(
        &self,
        image: Shared,
        requested: RequestedType,
        today: NaiveDate,
    ) -> Result<DocumentScan, ServiceError> {
        let document = self.engines.document.clone();
        let mut scan =
            self.blocking("document_scan", move || document.scan(&image, requested, today)).await?;
        apply_min_age(&mut scan, self.settings.min_age, today);
        Ok(scan)
    }

    async fn detect_and_embed(
        &self,
        image: Shared,
    ) -> Result<(DetectionOutcome, Option<Embedding>), ServiceError> {
        self.detect_and_embed_inner(image, true).await
    }

    /// Detects every face, rates the largest, and (for compare) embeds it: one detection shared
    /// by the face-detection and face-match blocks.
    async fn detect_and_embed_inner(
        &self,
        image: Shared,
        embed: bool,
    ) -> Result<(DetectionOutcome, Option<Embedding>), ServiceError> {
        let face = self.engines.face.clone();
        let metrics = self.metrics.clone();
        self.blocking("face_detect", move || {
            let started = Instant::now();
            let faces = face.detect(&image)?;
            metrics.observe_stage("face_detect_only", started.elapsed());
            let Some(largest) = faces.first() else {
                return Ok((DetectionOutcome { faces, quality: None }, None));
            };
            let quality = face.quality(&image, largest);
            let embedding = if embed {
                let started = Instant::now();
                let e = face.embed(&image, largest)?;
                metrics.observe_stage("face_embed", started.elapsed());
                Some(e)
            } else {
                None
            };
            Ok((DetectionOutcome { faces, quality: Some(quality) }, embedding))
        })
        .await
    }

    async fn portrait_and_embed(&self, document: Shared) -> Result<Option<(Face, Embedding)>, ServiceError> {
        let face = self.engines.face.clone();
        self.blocking("portrait", move || {
            let Some(portrait) = face.find_portrait(&document)? else { return Ok(None) };
            let embedding = face.embed(&document, &portrait)?;
            Ok(Some((portrait, embedding)))
        })
        .await
    }

    /// For compare: the largest face, or a small printed portrait when the image is a document.
    async fn any_face_and_embed(&self, image: Shared) -> Result<Option<(Face, Embedding)>, ServiceError> {
        let face = self.engines.face.clone();
        self.blocking("face_compare_side", move || {
            let found = match face.detect(&image)?.into_iter().next() {
                Some(f) => Some(f),
                None => face.find_portrait(&image)?,
            };
            let Some(found) = found else { return Ok(None) };
            let embedding = face.embed(&image, &found)?;
            Ok(Some((found, embedding)))
        })
        .await
    }

    /// Runs CPU-bound work on the blocking pool and records its duration as an engine stage.
    async fn blocking<T: Send + 'static>(
        &self,
        stage: &'static str,
        work: impl FnOnce() -> Result<T, EngineFailure> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(work)
            .await
            // A panic's message may quote data it was handling: keep only the fact.
            .map_err(|e| {
                let what = if e.is_panic() { "panicked" } else { "was cancelled" };
                ServiceError::Internal(format!("{stage} task {what}"))
            })?;
        self.metrics.observe_stage(stage, started.elapsed());
        Ok(result?)
    }
}

/// The verdict of a verify request, from the engines' values before any rounding for the wire.
pub fn judge(document: &DocumentScan, detection: &DetectionOutcome, matching: &MatchOutcome) -> Verdict {
    let largest = detection.faces.first();
    verdict::decide(
        DocumentSummary {
            read: document.error.is_none(),
            checks_passed: document.checks_passed(),
            confidence: document.confidence,
        },
        DetectionSummary {
            face_detected: largest.is_some(),
            confidence: largest.map_or(0.0, |face| face.score * 100.0),
        },
        match matching {
            MatchOutcome::Compared { score, .. } => {
                MatchSummary { compared: true, is_match: score.is_match, confidence: score.confidence }
            }
            MatchOutcome::NoFace(_) => MatchSummary { compared: false, is_match: false, confidence: 0.0 },
        },
    )
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Adds the `minimum_age` check when the operator configured one and a birth date was read.
pub fn apply_min_age(scan: &mut DocumentScan, min_age: u32, today: NaiveDate) {
    if min_age == 0 {
        return;
    }
    let passed = match scan.fields.date_of_birth {
        Some(birth) => age_on(birth, today) >= min_age as i32,
        None => false,
    };
    scan.checks.push(idverify_document::Check { name: "minimum_age", passed });
    if !passed {
        scan.reasons.push("below_minimum_age");
    }
}

/// Whole years between `birth` and `today`.
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::{BlockCode, BlockError};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn scan(birth: Option<NaiveDate>, error: Option<BlockError>) -> DocumentScan {
        DocumentScan {
            document_type: Some(idverify_document::DocumentType::Passport),
            source: Some("mrz_td3"),
            fields: idverify_document::DocumentFields { date_of_birth: birth, ..Default::default() },
            field_confidence: vec![],
            mrz_lines: vec![],
            confidence: 90.004,
            checks: vec![idverify_document::Check { name: "not_expired", passed: true }],
            reasons: vec![],
            error,
        }
    }

    fn face(score: f32) -> Face {
        Face {
            bbox: idverify_face::BoundingBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 },
            landmarks: [[0.0; 2]; 5],
            score,
        }
    }

    fn compared(confidence: f32, is_match: bool) -> MatchOutcome {
        MatchOutcome::Compared {
            score: MatchScore {
                distance: 0.3,
                confidence,
                threshold: 50.0,
                is_match,
                recognizers: idverify_face::DLIB_ALONE,
            },
            source_face: face(0.9),
            target_face: face(0.9),
        }
    }

    #[test]
    fn verdict_is_judged_on_unrounded_values() {
        let detection = DetectionOutcome { faces: vec![face(0.950_04)], quality: None };
        let v = judge(&scan(None, None), &detection, &compared(99.004, true));
        assert!(v.verified);
        assert_eq!(v.overall_confidence, verdict::round2(0.4 * 90.004 + 0.2 * 95.004 + 0.4 * 99.004));
    }

    #[test]
    fn failed_blocks_give_their_reasons() {
        let unread = scan(None, Some(BlockError::new(BlockCode::MrzUnreadable, "unreadable")));
        let nobody = DetectionOutcome { faces: vec![], quality: None };
        let v = judge(&unread, &nobody, &MatchOutcome::NoFace(ImageSlot::Selfie));
        assert!(!v.verified);
        assert_eq!(v.reasons, ["document_not_read", "no_face_detected", "faces_not_compared"]);
        assert_eq!(v.overall_confidence, 0.0);
    }

    #[test]
    fn minimum_age_check_only_when_configured() {
        let today = d(2026, 6, 15);
        let mut unset = scan(Some(d(2010, 1, 1)), None);
        apply_min_age(&mut unset, 0, today);
        assert!(unset.checks.iter().all(|c| c.name != "minimum_age"));
        assert!(unset.checks_passed());

        let mut young = scan(Some(d(2010, 1, 1)), None);
        apply_min_age(&mut young, 18, today);
        assert!(young.checks.iter().any(|c| c.name == "minimum_age" && !c.passed));
        assert!(!young.checks_passed());
        assert_eq!(young.reasons, ["below_minimum_age"]);

        let mut adult = scan(Some(d(2008, 6, 15)), None);
        apply_min_age(&mut adult, 18, today);
        assert!(adult.checks.iter().any(|c| c.name == "minimum_age" && c.passed));
        assert!(adult.checks_passed());

        let mut unknown = scan(None, None);
        apply_min_age(&mut unknown, 18, today);
        assert!(!unknown.checks_passed());
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(d(2000, 6, 15), d(2018, 6, 14)), 17);
        assert_eq!(age_on(d(2000, 6, 15), d(2018, 6, 15)), 18);
        assert_eq!(age_on(d(2000, 2, 29), d(2018, 2, 28)), 17);
        assert_eq!(age_on(d(2000, 2, 29), d(2018, 3, 1)), 18);
    }
}
