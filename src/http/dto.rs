//! The JSON contract: response bodies (camelCase, confidences 0 to 100, ISO 8601 dates, absent
//! values as `null`, so every `Option` field is present and the OpenAPI document marks it
//! required; one that is skipped instead says `#[schema(nullable = false)]`). The request schemas
//! of the document are in `requests.rs`.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::vocabulary::{
    BlockErrorCode, CheckName, DocumentReason, DocumentSource, DocumentTypeName, QualityReason,
    UploadContentType, VerdictReason,
};
use crate::engines::{
    BlockCode, BlockError, DocumentField, DocumentScan, Face, FaceQuality, FieldConfidence, ModelInfo,
};
use crate::verdict::round2;
use crate::verify::{DetectionOutcome, ImageSlot, MatchOutcome, VerifyOutcome};

impl ImageSlot {
    /// The request field that carries this image.
    pub const fn field_name(self) -> &'static str {
        match self {
            ImageSlot::Document => "documentImage",
            ImageSlot::Selfie => "faceImage",
            ImageSlot::Source => "sourceImage",
            ImageSlot::Target => "targetImage",
            ImageSlot::Photo => "image",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockErrorDto {
    /// Stable code, e.g. `no_face_detected`, `mrz_unreadable`, `portrait_not_found`.
    #[schema(value_type = BlockErrorCode)]
    pub code: String,
    pub message: String,
}

impl From<&BlockError> for BlockErrorDto {
    fn from(e: &BlockError) -> Self {
        BlockErrorDto { code: e.code.as_str().to_string(), message: e.message.clone() }
    }
}

/// The face-match error when nothing was compared, worded after the image that had no face.
fn no_face_error(slot: ImageSlot) -> BlockError {
    match slot {
        ImageSlot::Document => {
            BlockError::new(BlockCode::PortraitNotFound, "no portrait was found on the document")
        }
        ImageSlot::Selfie => BlockError::new(BlockCode::NoFaceDetected, "no face was detected in the selfie"),
        other => BlockError::new(
            BlockCode::NoFaceDetected,
            format!("no face was detected in {}", other.field_name()),
        ),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckDto {
    /// e.g. `document_number_check_digit`, `composite_check_digit`, `not_expired`, `minimum_age`.
    #[schema(value_type = CheckName)]
    pub name: String,
    pub passed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentBlock {
    /// `passport`, `drivers_license`, `national_id` or `visa`; null when nothing was read.
    #[schema(value_type = Option<DocumentTypeName>)]
    pub document_type: Option<String>,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    /// AAMVA barcodes only (an MRZ does not separate middle names from given names).
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    /// YYYY-MM-DD
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    /// As printed: M, F or X.
    pub gender: Option<String>,
    /// ICAO 9303 alpha-3 code.
    pub nationality: Option<String>,
    pub document_number: Option<String>,
    /// YYYY-MM-DD
    #[schema(format = Date)]
    pub expiration_date: Option<String>,
    /// YYYY-MM-DD; AAMVA barcodes only (an MRZ has no issue date).
    pub issue_date: Option<String>,
    /// ICAO 9303 alpha-3 code (MRZ) or jurisdiction (AAMVA).
    pub issuing_country: Option<String>,
    /// The US state's or Canadian province's postal code (`CA`, `ON`) that issued a licence or ID
    /// card, read from its front (a licence number is unique only within it); null for an MRZ, a
    /// barcode, or an EU card (its issuer is `issuingCountry`).
    pub issuing_jurisdiction: Option<String>,
    pub address: Option<String>,
    /// 0 to 100: the document as a whole (see the README).
    pub confidence: f32,
    /// 0 to 100 for each field that was read, keyed by the field's name above.
    pub field_confidence: FieldConfidenceDto,
    /// Where the fields were read: `mrz_td1`, `mrz_td2`, `mrz_td3`, `mrz_mrva`, `mrz_mrvb`,
    /// `pdf417_aamva`, or a card front's printed fields: `viz_aamva`, `viz_eu_dl`, `viz_id_card`.
    #[schema(value_type = Option<DocumentSource>)]
    pub source: Option<String>,
    /// Exactly: every entry of `checks` passed (and there is at least one).
    pub checks_passed: bool,
    pub checks: Vec<CheckDto>,
    /// Reason codes that lowered confidence or failed checks, e.g. `name_uncertain`, `expired`.
    #[schema(value_type = Vec<DocumentReason>)]
    pub reasons: Vec<String>,
    pub error: Option<BlockErrorDto>,
}

impl DocumentBlock {
    pub fn from_scan(scan: &DocumentScan) -> Self {
        let f = &scan.fields;
        let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        DocumentBlock {
            document_type: scan.document_type.map(|t| enum_name(&t)),
            full_name: f.full_name.clone(),
            first_name: f.first_name.clone(),
            middle_name: f.middle_name.clone(),
            last_name: f.last_name.clone(),
            date_of_birth: date(f.date_of_birth),
            gender: f.gender.clone(),
            nationality: f.nationality.clone(),
            document_number: f.document_number.clone(),
            expiration_date: date(f.expiration_date),
            issue_date: date(f.issue_date),
            issuing_country: f.issuing_country.clone(),
            issuing_jurisdiction: f.issuing_jurisdiction.clone(),
            address: f.address.clone(),
            confidence: if scan.error.is_some() { 0.0 } else { round2(scan.confidence) },
            field_confidence: FieldConfidenceDto::from(&scan.field_confidence),
            source: scan.source.map(str::to_string),
            checks_passed: scan.checks_passed(),
            checks: scan
                .checks
                .iter()
                .map(|c| CheckDto { name: c.name.to_string(), passed: c.passed })
                .collect(),
            reasons: scan.reasons.iter().map(|r| r.to_string()).collect(),
            error: scan.error.as_ref().map(BlockErrorDto::from),
        }
    }
}

/// Per-field confidence, 0 to 100; a field that was not read is absent.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldConfidenceDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub full_name: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub first_name: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub middle_name: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_name: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub date_of_birth: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub gender: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub nationality: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub document_number: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expiration_date: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub issue_date: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub issuing_country: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub issuing_jurisdiction: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub address: Option<f32>,
}

impl From<&FieldConfidence> for FieldConfidenceDto {
    fn from(confidences: &FieldConfidence) -> Self {
        let mut dto = FieldConfidenceDto::default();
        for &(field, confidence) in confidences {
            let slot = match field {
                DocumentField::FullName => &mut dto.full_name,
                DocumentField::FirstName => &mut dto.first_name,
                DocumentField::MiddleName => &mut dto.middle_name,
                DocumentField::LastName => &mut dto.last_name,
                DocumentField::DateOfBirth => &mut dto.date_of_birth,
                DocumentField::Gender => &mut dto.gender,
                DocumentField::Nationality => &mut dto.nationality,
                DocumentField::DocumentNumber => &mut dto.document_number,
                DocumentField::ExpirationDate => &mut dto.expiration_date,
                DocumentField::IssueDate => &mut dto.issue_date,
                DocumentField::IssuingCountry => &mut dto.issuing_country,
                DocumentField::IssuingJurisdiction => &mut dto.issuing_jurisdiction,
                DocumentField::Address => &mut dto.address,
            };
            *slot = Some(round2(confidence));
        }
        dto
    }
}

/// The serde name of a unit enum variant (`DocumentType::DriversLicense` → `drivers_license`).
fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundingBoxDto {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaceDto {
    /// Pixels in the upright (EXIF-rotated) image.
    pub bounding_box: BoundingBoxDto,
    /// Left eye, right eye, nose tip, left and right mouth corners (image left/right), [x, y].
    pub landmarks: Vec<[f32; 2]>,
    /// Detector score, 0 to 100.
    pub confidence: f32,
}

impl From<&Face> for FaceDto {
    fn from(f: &Face) -> Self {
        let r = |v: f32| (v * 10.0).round() / 10.0;
        FaceDto {
            bounding_box: BoundingBoxDto {
                x: r(f.bbox.x),
                y: r(f.bbox.y),
                width: r(f.bbox.width),
                height: r(f.bbox.height),
            },
            landmarks: f.landmarks.iter().map(|p| [r(p[0]), r(p[1])]).collect(),
            confidence: round2(f.score * 100.0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QualityDto {
    pub face_width_px: f32,
    /// Variance of the Laplacian on the face crop; higher is sharper.
    pub sharpness: f32,
    /// Mean luma of the face crop, 0 to 255.
    pub brightness: f32,
    pub yaw_degrees: f32,
    pub roll_degrees: f32,
    /// e.g. `face_too_small`, `blurry`, `too_dark`, `too_bright`, `pose_yaw`, `pose_roll`.
    #[schema(value_type = Vec<QualityReason>)]
    pub reasons: Vec<String>,
}

impl From<&FaceQuality> for QualityDto {
    fn from(q: &FaceQuality) -> Self {
        QualityDto {
            face_width_px: round2(q.face_width_px),
            sharpness: round2(q.sharpness),
            brightness: round2(q.brightness),
            yaw_degrees: round2(q.yaw_degrees),
            roll_degrees: round2(q.roll_degrees),
            reasons: q.reasons.iter().map(|r| r.to_string()).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaceDetectionBlock {
    pub face_detected: bool,
    /// Detector score of the largest face, 0 to 100 (0 when none).
    pub confidence: f32,
    pub face_count: usize,
    /// Quality of the largest face.
    pub quality: Option<QualityDto>,
    /// Every face, largest first (face/detect only; absent elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub faces: Option<Vec<FaceDto>>,
    pub error: Option<BlockErrorDto>,
}

impl FaceDetectionBlock {
    pub fn from_outcome(d: &DetectionOutcome, with_faces: bool) -> Self {
        let largest = d.faces.first();
        FaceDetectionBlock {
            face_detected: largest.is_some(),
            confidence: largest.map(|f| round2(f.score * 100.0)).unwrap_or(0.0),
            face_count: d.faces.len(),
            quality: d.quality.as_ref().map(QualityDto::from),
            faces: with_faces.then(|| d.faces.iter().map(FaceDto::from).collect()),
            error: largest.is_none().then(|| {
                BlockErrorDto::from(&BlockError::new(
                    BlockCode::NoFaceDetected,
                    "no face was detected in the image",
                ))
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchModelDto {
    pub detector: String,
    pub recognizer: String,
    /// Version of the fitted distance-to-confidence calibration.
    pub calibration: String,
    /// The operating point: target false-match rate on the calibration set.
    pub target_fmr: f64,
    /// The recognizers whose scores decided this match: `dlib_face_recognition_resnet_v1` alone,
    /// or it and `opencv_zoo_sface_2021dec` fused (inside the cascade's uncertainty band, or always
    /// with `face_recognizers = "fused"`). Empty when nothing was compared.
    pub recognizers: Vec<String>,
}

impl MatchModelDto {
    fn new(m: &ModelInfo, decided_by: &[&str]) -> Self {
        MatchModelDto {
            detector: m.detector.clone(),
            recognizer: m.recognizer.clone(),
            calibration: m.calibration.clone(),
            target_fmr: m.target_fmr,
            recognizers: decided_by.iter().map(|r| r.to_string()).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaceMatchBlock {
    pub is_match: bool,
    /// Calibrated probability that both faces are the same person, 0 to 100.
    pub confidence: f32,
    /// The confidence at the operating point; `isMatch` is `confidence >= threshold`.
    pub threshold: f32,
    /// Euclidean distance between the unit-length embeddings, 0 to 2 (null when not compared).
    pub distance: Option<f32>,
    pub model: MatchModelDto,
    pub error: Option<BlockErrorDto>,
}

impl FaceMatchBlock {
    pub fn from_outcome(m: &MatchOutcome, model: &ModelInfo) -> Self {
        match m {
            MatchOutcome::Compared { score, .. } => FaceMatchBlock {
                is_match: score.is_match,
                confidence: round2(score.confidence),
                threshold: round2(score.threshold),
                distance: Some((score.distance * 10_000.0).round() / 10_000.0),
                model: MatchModelDto::new(model, score.recognizers),
                error: None,
            },
            MatchOutcome::NoFace(slot) => FaceMatchBlock {
                is_match: false,
                confidence: 0.0,
                threshold: round2(model.threshold_confidence),
                distance: None,
                model: MatchModelDto::new(model, &[]),
                error: Some(BlockErrorDto::from(&no_face_error(*slot))),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub request_id: String,
    /// True only when the document was read and all its checks pass, a face was detected in the
    /// selfie, and the document portrait matches the selfie.
    pub verified: bool,
    pub document: DocumentBlock,
    pub face_detection: FaceDetectionBlock,
    pub face_match: FaceMatchBlock,
    /// 0.4 × document + 0.2 × faceDetection + 0.4 × faceMatch confidence; failed blocks count 0.
    pub overall_confidence: f32,
    /// Why `verified` is false, e.g. `document_checks_failed`, `faces_do_not_match`.
    #[schema(value_type = Vec<VerdictReason>)]
    pub reasons: Vec<String>,
}

impl VerifyResponse {
    pub fn build(request_id: String, outcome: &VerifyOutcome) -> Self {
        let document = DocumentBlock::from_scan(&outcome.document);
        let face_detection = FaceDetectionBlock::from_outcome(&outcome.detection, false);
        let face_match = FaceMatchBlock::from_outcome(&outcome.matching, &outcome.model);
        let v = &outcome.verdict;
        VerifyResponse {
            request_id,
            verified: v.verified,
            document,
            face_detection,
            face_match,
            overall_confidence: v.overall_confidence,
            reasons: v.reasons.iter().map(|r| r.to_string()).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanResponse {
    pub request_id: String,
    pub document: DocumentBlock,
    /// The MRZ lines as read, corrected to the layout (scan only; empty for a barcode).
    pub mrz_lines: Vec<String>,
}

impl ScanResponse {
    pub fn build(request_id: String, scan: &DocumentScan) -> Self {
        ScanResponse {
            request_id,
            document: DocumentBlock::from_scan(scan),
            mrz_lines: scan.mrz_lines.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectResponse {
    pub request_id: String,
    pub face_detection: FaceDetectionBlock,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompareResponse {
    pub request_id: String,
    pub face_match: FaceMatchBlock,
    pub source_face: Option<FaceDto>,
    pub target_face: Option<FaceDto>,
}

impl CompareResponse {
    pub fn build(request_id: String, outcome: &MatchOutcome, model: &ModelInfo) -> Self {
        let (source_face, target_face) = match outcome {
            MatchOutcome::Compared { source_face, target_face, .. } => {
                (Some(source_face.into()), Some(target_face.into()))
            }
            MatchOutcome::NoFace(_) => (None, None),
        };
        CompareResponse {
            request_id,
            face_match: FaceMatchBlock::from_outcome(outcome, model),
            source_face,
            target_face,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadResponse {
    pub request_id: String,
    /// PUT the image bytes here, with the headers below, before `expiresAt`.
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    /// Object key inside the bucket (under your organization's prefix).
    pub key: String,
    /// Pass this `s3://bucket/key` reference as an image field of a later request.
    pub uri: String,
    /// RFC 3339 time after which the URL is refused.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRequest {
    /// `image/jpeg` (the default), `image/png` or `image/webp`.
    #[schema(value_type = UploadContentType, required = false)]
    pub content_type: String,
}

/// `GET /v1/info`: what this server is and what it accepts, so a client can check what it talks to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfoResponse {
    pub request_id: String,
    /// The server's version (semver).
    pub version: String,
    pub models: InfoModels,
    pub face_match: InfoFaceMatch,
    pub limits: InfoLimits,
    /// Tokens each endpoint costs.
    pub prices: InfoPrices,
    /// The `minimum_age` check's age; 0 when no age is required.
    pub min_age: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfoModels {
    pub face_detector: String,
    pub face_recognizer: String,
    /// The face calibration's id (`crates/face/calibration.json`).
    pub face_calibration: String,
    pub text_detector: String,
    /// The MRZ recognizer.
    pub text_recognizer: String,
    /// The recognizer of a card front's printed fields (Latin script).
    pub card_text_recognizer: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfoFaceMatch {
    /// The false-match rate the threshold is set for.
    pub target_fmr: f64,
    /// `faceMatch.confidence` at or above this is a match, 0 to 100.
    pub threshold_confidence: f32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfoLimits {
    /// Largest image accepted, in bytes (decoded bytes for base64).
    pub max_image_bytes: u64,
    /// Largest image accepted, in pixels (width × height).
    pub max_image_pixels: u64,
    /// Largest request body, in bytes.
    pub max_body_bytes: u64,
    /// A request is answered or cut off within this many seconds.
    pub request_timeout_secs: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfoPrices {
    pub verify: i64,
    pub document_scan: i64,
    pub face_detect: i64,
    pub face_compare: i64,
    pub uploads: i64,
}

impl InfoResponse {
    pub fn build(request_id: String, config: &crate::config::Config, face: &ModelInfo) -> Self {
        InfoResponse {
            request_id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            models: InfoModels {
                face_detector: face.detector.clone(),
                face_recognizer: face.recognizer.clone(),
                face_calibration: face.calibration.clone(),
                text_detector: idverify_document::DET_MODEL.to_string(),
                text_recognizer: idverify_document::REC_MODEL.to_string(),
                card_text_recognizer: idverify_document::VIZ_REC_MODEL.to_string(),
            },
            face_match: InfoFaceMatch {
                target_fmr: face.target_fmr,
                threshold_confidence: round2(face.threshold_confidence),
            },
            limits: InfoLimits {
                max_image_bytes: config.max_image_bytes,
                max_image_pixels: config.max_image_pixels,
                max_body_bytes: config.max_body_bytes,
                request_timeout_secs: config.request_timeout_secs,
            },
            prices: InfoPrices {
                verify: config.price_verify,
                document_scan: config.price_document_scan,
                face_detect: config.price_face_detect,
                face_compare: config.price_face_compare,
                uploads: config.price_uploads,
            },
            min_age: config.min_age,
        }
    }
}
