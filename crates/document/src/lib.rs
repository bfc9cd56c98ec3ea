//! Document engine: reads the machine readable zone (MRZ) of passports, ID cards and visas with
//! PP-OCRv6 (text detection + recognition through ONNX Runtime), the printed fields of driver's
//! licence and ID card fronts (every text line read, then mapped by [`viz`]), and the PDF417 barcode
//! of North American driver's licences (AAMVA payloads). [`DocumentEngine::scan`] says in which
//! order, by requested document type.
//!
//! # MRZ pipeline
//!
//! 1. DB text detection on the lower 40 % of the page scaled to at most 640 px (where the MRZ of an
//!    upright page is); then on the whole page at 640 px, then at 960 px, each pass only when the
//!    previous ones were not conclusive (small pages are upscaled to 640 px).
//! 2. Boxes are grouped into rows along their own direction (skewed photos), long thin rows kept;
//!    the lowest long rows are recognized first, cropped from the full-resolution page.
//! 3. Greedy CTC decoding restricted to the MRZ alphabet `A-Z 0-9 <`; each line is fitted to
//!    30/36/44 characters by growing or shrinking its longest filler run.
//! 4. 2 or 3 consecutive rows are parsed ([`mrz::parse`]: layout-aware letter/digit correction,
//!    country codes checked against the ICAO list, never a repair from a check digit); the set with
//!    the most valid check digits wins, and reading stops as soon as every check digit passes.
//! 5. If only one line of a 2-line MRZ was detected (a stamp over the other), the places above and
//!    below it are read at a few line pitches. If nothing is found, the rows of the same detector
//!    pass are read on the page turned by 90°, 180° and 270° (the detector finds rows at any angle;
//!    each row is read in the turn where it is closest to horizontal). The detector runs on the
//!    quarter-turned page only when steep rows were seen and nothing could be read. A row is never
//!    recognized twice in the same orientation.
//! 6. A failing check digit triggers second reads of every line from two other crops (the best
//!    combination is kept; nothing is changed to fit a check digit).
//! 7. The name has no check digit: a name with a weakly read character, or on a line that had to be
//!    padded or trimmed to fit, is read again, first from a crop of the line's start through the
//!    name (cheaper), then from two other crops of the whole line; unless an exact-length second
//!    read spells the same name, the scan carries `name_uncertain` and its `name_certain` check fails.
//!
//! # Confidence
//!
//! `DocumentScan::confidence` is in 0..=100.
//!
//! * MRZ: `100 × p × v`, where `p` is the mean recognizer probability of the MRZ characters
//!   (greedy CTC, probability of the chosen class at its best time step; a position where a
//!   character had to be inserted or removed to fit the layout counts as 0) and `v` is the fraction of
//!   check digits that pass. When the name (which has no check digit) was read with low probability
//!   (`name_uncertain`), the result is further capped at 50 so that such a read is never reported as
//!   fully trustworthy.
//! * AAMVA: the barcode has its own error correction, so `100 × f`, where `f` is the fraction of
//!   the four key fields (name, document number, birth date, expiry date) that parsed.
//!
//! [`DocumentScan::checks_passed`] is exactly "every check in `checks` passed": the check digits,
//! `not_expired`, `name_certain` (MRZ) and, when a type was requested, `document_type_matches`.
//! The engine has no age rule: the service adds a `minimum_age` check when the operator configures
//! one.

use std::path::PathBuf;

use chrono::NaiveDate;

pub mod aamva;
pub mod barcode;
mod block;
pub mod eu_dl_mrz;
pub mod eval;
pub mod field_confidence;
pub mod mrz;
mod ocr;
mod stages;
pub mod viz;

pub use block::{BlockCode, BlockError};
pub use field_confidence::{DocumentField, FieldConfidence};
pub use idverify_onnx::OnnxError;
pub use ocr::{DET_MODEL, REC_MODEL, VIZ_REC_MODEL};
pub use stages::{DetectorPass, LINE_HEIGHT, MRZ_LINE_MAX_WIDTH, OcrRuns};

/// Engine settings. `sessions` is the number of independent OCR session pairs (parallel scans).
#[derive(Clone, Debug)]
pub struct DocumentEngineConfig {
    pub models_dir: PathBuf,
    pub intra_threads: usize,
    pub sessions: usize,
    /// Also read a passport's (or an `auto` document's) printed fields and compare them with its
    /// MRZ (`viz_mrz_consistent`). About three times a passport scan's CPU; ID cards asked for as
    /// `national_id` are always compared.
    pub cross_check_passports: bool,
}

impl Default for DocumentEngineConfig {
    fn default() -> Self {
        DocumentEngineConfig {
            models_dir: PathBuf::from("models"),
            intra_threads: 1,
            sessions: 1,
            cross_check_passports: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedType {
    Auto,
    Passport,
    DriversLicense,
    NationalId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Passport,
    DriversLicense,
    NationalId,
    Visa,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentFields {
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    /// AAMVA only (an MRZ does not separate middle names from given names).
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Option<String>,
    pub nationality: Option<String>,
    pub document_number: Option<String>,
    pub expiration_date: Option<NaiveDate>,
    /// AAMVA only (an MRZ has no issue date).
    pub issue_date: Option<NaiveDate>,
    pub issuing_country: Option<String>,
    /// The US state's or Canadian province's postal code (`CA`, `ON`) that issued a licence or ID
    /// card, from its front's header: a licence number is unique only within its jurisdiction. Not
    /// from a barcode (it names its issuer by an issuer identification number, not mapped here).
    pub issuing_jurisdiction: Option<String>,
    pub address: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// "document_number_check_digit", "birth_date_check_digit", "expiry_check_digit",
    /// "optional_data_check_digit", "composite_check_digit", "not_expired", "name_certain",
    /// "document_type_matches", and for a card front "birth_date_plausible",
    /// "document_number_format", "eu_dl_mrz_check_digit", "viz_mrz_consistent" (and "minimum_age",
    /// added by the service)
    pub name: &'static str,
    pub passed: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentScan {
    pub document_type: Option<DocumentType>,
    /// "mrz_td1", "mrz_td2", "mrz_td3", "mrz_mrva", "mrz_mrvb", "pdf417_aamva", "viz_aamva",
    /// "viz_eu_dl", "viz_id_card"
    pub source: Option<&'static str>,
    pub fields: DocumentFields,
    /// 0..=100 per field read (see [`field_confidence`]).
    pub field_confidence: FieldConfidence,
    /// The MRZ lines as read and corrected to the layout (an EU licence's one line as read); empty
    /// for a barcode.
    pub mrz_lines: Vec<String>,
    /// 0..=100, see the crate documentation.
    pub confidence: f32,
    pub checks: Vec<Check>,
    /// e.g. "name_uncertain", "check_digit_failed", "expired", "low_recognition_confidence"
    pub reasons: Vec<&'static str>,
    /// Nothing usable was read (`no_document_found`, `mrz_unreadable`, `barcode_unreadable`), or
    /// what was read is not of the requested type (`document_type_mismatch`, fields kept).
    pub error: Option<BlockError>,
}

impl DocumentScan {
    /// Every check passed (and there was at least one): what `checksPassed` says on the wire.
    pub fn checks_passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    fn failed(code: BlockCode, message: impl Into<String>) -> DocumentScan {
        DocumentScan {
            document_type: None,
            source: None,
            fields: DocumentFields::default(),
            field_confidence: Vec::new(),
            mrz_lines: Vec::new(),
            confidence: 0.0,
            checks: Vec::new(),
            reasons: Vec::new(),
            error: Some(BlockError::new(code, message)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Model(#[from] OnnxError),
    #[error("inference failed: {0}")]
    Inference(String),
}

impl From<idverify_onnx::ort::Error> for DocumentError {
    fn from(e: idverify_onnx::ort::Error) -> Self {
        DocumentError::Inference(e.to_string())
    }
}

/// Mean recognizer probability under which a read is flagged `low_recognition_confidence`.
const LOW_RECOGNITION: f32 = 0.85;

/// The document engine. Cheap to share: `Send + Sync`, every method takes `&self`.
pub struct DocumentEngine {
    ocr: ocr::MrzReader,
    cross_check_passports: bool,
}

impl DocumentEngine {
    pub fn load(cfg: &DocumentEngineConfig) -> Result<DocumentEngine, DocumentError> {
        Ok(DocumentEngine {
            ocr: ocr::MrzReader::load(cfg)?,
            cross_check_passports: cfg.cross_check_passports,
        })
    }

    /// `image` is already EXIF-oriented. Err only for internal failures (inference error); "nothing
    /// found", "unreadable" and "type mismatch" are `Ok(scan)` with `error` set.
    ///
    /// A passport (or `auto`) is read by its MRZ, then a PDF417 barcode, then, when neither is
    /// there, a card front's printed fields. A licence or an ID card is read front first: the
    /// printed fields, unless an ICAO MRZ is on the same side (then the MRZ, cross-checked against
    /// them), then its barcode (the back of a licence) or MRZ.
    pub fn scan(
        &self,
        image: &image::RgbImage,
        requested: RequestedType,
        today: NaiveDate,
    ) -> Result<DocumentScan, DocumentError> {
        if image.width() < 8 || image.height() < 8 {
            return Ok(DocumentScan::failed(BlockCode::NoDocumentFound, "image too small"));
        }
        if matches!(requested, RequestedType::DriversLicense | RequestedType::NationalId) {
            return self.scan_card(image, requested, today);
        }
        let mut seen = Seen::default();
        let page = if self.cross_check_passports { Some(self.ocr.read_text_lines(image)?) } else { None };
        if let Some(scan) = self.scan_mrz(image, page.as_deref(), &mut seen, today)? {
            return Ok(check_requested(scan, requested));
        }
        if let Some(scan) = self.scan_barcode(image, &mut seen, today) {
            return Ok(check_requested(scan, requested));
        }
        if !seen.mrz {
            let lines = match page {
                Some(lines) => lines,
                None => self.ocr.read_card_lines(image)?,
            };
            if let Some(read) = viz::parse(&lines, requested, today).filter(has_key_fields) {
                return Ok(check_requested(viz_scan(&read, today), requested));
            }
        }
        Ok(seen.failure())
    }

    /// A licence or an ID card: see [`DocumentEngine::scan`].
    fn scan_card(
        &self,
        image: &image::RgbImage,
        requested: RequestedType,
        today: NaiveDate,
    ) -> Result<DocumentScan, DocumentError> {
        let lines = self.ocr.read_card_lines(image)?;
        let front = viz::parse(&lines, requested, today).filter(has_key_fields);
        let icao_mrz_here = lines.iter().any(|l| looks_like_icao_mrz(&l.text));
        if let Some(read) = &front
            && !icao_mrz_here
        {
            return Ok(check_requested(viz_scan(read, today), requested));
        }
        let mut seen = Seen::default();
        if requested == RequestedType::DriversLicense
            && let Some(scan) = self.scan_barcode(image, &mut seen, today)
        {
            return Ok(check_requested(scan, requested));
        }
        if let Some(scan) = self.scan_mrz(image, Some(&lines), &mut seen, today)? {
            return Ok(check_requested(scan, requested));
        }
        if let Some(read) = &front {
            return Ok(check_requested(viz_scan(read, today), requested));
        }
        if requested == RequestedType::NationalId
            && let Some(scan) = self.scan_barcode(image, &mut seen, today)
        {
            return Ok(check_requested(scan, requested));
        }
        Ok(seen.failure())
    }

    /// The MRZ; when the page's text lines were read too, its printed fields are compared with it:
    /// a clear disagreement is a failed `viz_mrz_consistent` check (a forgery signal no check digit
    /// gives).
    fn scan_mrz(
        &self,
        image: &image::RgbImage,
        page: Option<&[viz::TextLine]>,
        seen: &mut Seen,
        today: NaiveDate,
    ) -> Result<Option<DocumentScan>, DocumentError> {
        match self.ocr.read(image, today)? {
            ocr::MrzOutcome::Found(read) => {
                let mut scan = mrz_scan(&read, today);
                let compared = page.and_then(|lines| {
                    let fields = viz::labelled_fields(lines, today);
                    viz::cross_check_mrz(&read.record, &fields, lines, today)
                });
                if let Some((check, _)) = compared {
                    if !check.passed {
                        scan.reasons.push("viz_mrz_mismatch");
                        scan.confidence = scan.confidence.min(50.0);
                    }
                    scan.checks.push(check);
                }
                Ok(Some(scan))
            }
            ocr::MrzOutcome::Unreadable => {
                seen.mrz = true;
                Ok(None)
            }
            ocr::MrzOutcome::None => Ok(None),
        }
    }

    /// Every text line OCR reads on an upright page, as the visual-zone parser gets them (for
    /// evaluation and troubleshooting; the text is personal data: never log it).
    pub fn text_lines(&self, image: &image::RgbImage) -> Result<Vec<viz::TextLine>, DocumentError> {
        self.ocr.read_text_lines(image)
    }

    fn scan_barcode(
        &self,
        image: &image::RgbImage,
        seen: &mut Seen,
        today: NaiveDate,
    ) -> Option<DocumentScan> {
        let payload = barcode::decode_pdf417(image)?;
        match aamva::parse(&payload, today) {
            Ok(record) => Some(aamva_scan(&record, today)),
            Err(_) => {
                seen.barcode = true;
                None
            }
        }
    }
}

/// What was seen on a page that could not be read, for the block error.
#[derive(Default)]
struct Seen {
    /// MRZ-like rows whose layout could not be parsed.
    mrz: bool,
    /// A PDF417 barcode without AAMVA data.
    barcode: bool,
}

impl Seen {
    fn failure(&self) -> DocumentScan {
        if self.mrz {
            DocumentScan::failed(
                BlockCode::MrzUnreadable,
                "an MRZ-like text zone was found but could not be read",
            )
        } else if self.barcode {
            DocumentScan::failed(
                BlockCode::BarcodeUnreadable,
                "a PDF417 barcode was found but holds no AAMVA licence data",
            )
        } else {
            DocumentScan::failed(
                BlockCode::NoDocumentFound,
                "no MRZ, PDF417 barcode or card front with readable fields found",
            )
        }
    }
}

/// A line of an ICAO MRZ as the Latin recognizer reads it: long, fillers, letters (it may read some
/// in lower case) and digits only, and not the one-line MRZ of an EU licence.
fn looks_like_icao_mrz(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact.chars().count() >= 28
        && compact.contains("<<")
        && compact.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '<' | '«'))
        && eu_dl_mrz::parse(&compact, NaiveDate::default()).is_err()
}

fn empty_to_none(s: &str) -> Option<String> {
    if s.trim().is_empty() { None } else { Some(s.trim().to_string()) }
}

/// Document type implied by an MRZ: the layout, unless the document code says otherwise.
pub fn mrz_document_type(record: &mrz::MrzRecord) -> DocumentType {
    match (record.format, record.document_code.chars().next()) {
        (mrz::MrzFormat::MrvA | mrz::MrzFormat::MrvB, _) | (_, Some('V')) => DocumentType::Visa,
        (_, Some('P')) | (mrz::MrzFormat::Td3, _) => DocumentType::Passport,
        _ => DocumentType::NationalId,
    }
}

fn mrz_scan(read: &ocr::MrzRead, today: NaiveDate) -> DocumentScan {
    let r = &read.record;
    let mut checks: Vec<Check> =
        r.check_digits.iter().map(|c| Check { name: c.name, passed: c.passed }).collect();
    let digits_ok = r.all_check_digits_pass();
    let not_expired = r.expiry_date.is_some_and(|e| e >= today);
    checks.push(Check { name: "not_expired", passed: not_expired });
    // The name has no check digit: an uncertain reading of it is a failed check of its own.
    checks.push(Check { name: "name_certain", passed: !read.name_uncertain });
    let mut reasons = Vec::new();
    if !digits_ok {
        reasons.push("check_digit_failed");
    }
    if !not_expired {
        reasons.push("expired");
    }
    if read.mean_probability < LOW_RECOGNITION {
        reasons.push("low_recognition_confidence");
    }
    if read.name_uncertain {
        reasons.push("name_uncertain");
    }
    let passed = r.check_digits.iter().filter(|c| c.passed).count() as f32;
    let validity = if r.check_digits.is_empty() { 0.0 } else { passed / r.check_digits.len() as f32 };
    let mut confidence = 100.0 * read.mean_probability.clamp(0.0, 1.0) * validity;
    if read.name_uncertain {
        confidence = confidence.min(50.0);
    }
    DocumentScan {
        document_type: Some(mrz_document_type(r)),
        source: Some(r.format.source_name()),
        fields: DocumentFields {
            full_name: r.full_name(),
            first_name: empty_to_none(&r.given_names),
            middle_name: None,
            last_name: empty_to_none(&r.surname),
            date_of_birth: r.birth_date,
            gender: r.sex.clone(),
            nationality: empty_to_none(&r.nationality),
            document_number: empty_to_none(&r.document_number),
            expiration_date: r.expiry_date,
            issue_date: None,
            issuing_country: empty_to_none(&r.issuing_country),
            issuing_jurisdiction: None,
            address: None,
        },
        field_confidence: field_confidence::mrz(r, &read.fitted, read.name_uncertain),
        mrz_lines: r.lines.clone(),
        confidence,
        checks,
        reasons,
        error: None,
    }
}

fn aamva_scan(r: &aamva::AamvaRecord, today: NaiveDate) -> DocumentScan {
    let not_expired = r.expiry_date.is_some_and(|e| e >= today);
    let checks = vec![Check { name: "not_expired", passed: not_expired }];
    let mut reasons = Vec::new();
    if !not_expired {
        reasons.push("expired");
    }
    let key_fields = [
        r.last_name.is_some() || r.first_name.is_some(),
        r.document_number.is_some(),
        r.birth_date.is_some(),
        r.expiry_date.is_some(),
    ];
    let found = key_fields.iter().filter(|&&b| b).count() as f32;
    let fields = DocumentFields {
        full_name: r.full_name(),
        first_name: r.first_name.clone(),
        middle_name: r.middle_name.clone(),
        last_name: r.last_name.clone(),
        date_of_birth: r.birth_date,
        gender: r.sex.clone(),
        nationality: None,
        document_number: r.document_number.clone(),
        expiration_date: r.expiry_date,
        issue_date: r.issue_date,
        issuing_country: r.country.clone(),
        issuing_jurisdiction: None,
        address: r.address(),
    };
    DocumentScan {
        document_type: Some(DocumentType::DriversLicense),
        source: Some("pdf417_aamva"),
        field_confidence: field_confidence::barcode(&fields),
        fields,
        mrz_lines: Vec::new(),
        confidence: 100.0 * found / key_fields.len() as f32,
        checks,
        reasons,
        error: None,
    }
}

/// The four fields a card front must show to be reported at all: at least two of them.
fn has_key_fields(read: &viz::VizRead) -> bool {
    key_fields_read(&read.fields) >= 2
}

fn key_fields_read(f: &DocumentFields) -> usize {
    [
        f.last_name.is_some(),
        f.document_number.is_some(),
        f.date_of_birth.is_some(),
        f.expiration_date.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count()
}

fn viz_scan(read: &viz::VizRead, today: NaiveDate) -> DocumentScan {
    let (checks, mut reasons) = viz::checks(read, today);
    let key = [
        DocumentField::LastName,
        DocumentField::DocumentNumber,
        DocumentField::DateOfBirth,
        DocumentField::ExpirationDate,
    ];
    let probs: Vec<f32> =
        read.field_confidence.iter().filter(|(f, _)| key.contains(f)).map(|(_, p)| p / 100.0).collect();
    let mean = probs.iter().sum::<f32>() / probs.len().max(1) as f32;
    if mean < LOW_RECOGNITION {
        reasons.push("low_recognition_confidence");
    }
    // Printed fields have no check digit of their own: the confidence is what OCR says of the key
    // fields, scaled by how many of them were read, and halved at most when the line MRZ disagrees.
    let mut confidence =
        100.0 * mean.clamp(0.0, 1.0) * key_fields_read(&read.fields) as f32 / key.len() as f32;
    if checks.iter().any(|c| matches!(c.name, "eu_dl_mrz_check_digit" | "viz_mrz_consistent") && !c.passed) {
        confidence = confidence.min(50.0);
    }
    let document_type = match read.layout {
        viz::VizLayout::IdCard => DocumentType::NationalId,
        _ if read.identification_card => DocumentType::NationalId,
        _ => DocumentType::DriversLicense,
    };
    DocumentScan {
        document_type: Some(document_type),
        source: Some(read.layout.source_name()),
        fields: read.fields.clone(),
        field_confidence: read.field_confidence.clone(),
        mrz_lines: read.eu_mrz.iter().map(|m| m.line.clone()).collect(),
        confidence,
        checks,
        reasons,
        error: None,
    }
}

/// Flags a mismatch between what was found and what the caller asked for (fields stay reported).
fn check_requested(mut scan: DocumentScan, requested: RequestedType) -> DocumentScan {
    let Some(found) = scan.document_type else { return scan };
    let ok = match requested {
        RequestedType::Auto => true,
        RequestedType::Passport => found == DocumentType::Passport,
        RequestedType::DriversLicense => found == DocumentType::DriversLicense,
        RequestedType::NationalId => found == DocumentType::NationalId,
    };
    if requested != RequestedType::Auto {
        scan.checks.push(Check { name: "document_type_matches", passed: ok });
    }
    if !ok {
        scan.error = Some(BlockError::new(
            BlockCode::DocumentTypeMismatch,
            format!("requested {requested:?} but found {found:?}"),
        ));
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_sync() {
        assert_send_sync::<DocumentEngine>();
        assert_send_sync::<DocumentScan>();
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    fn fake_read(lines: &[&str], mean_probability: f32, name_uncertain: bool) -> ocr::MrzRead {
        ocr::MrzRead {
            record: mrz::parse(lines, today()).unwrap(),
            mean_probability,
            name_uncertain,
            fitted: Vec::new(),
            line_rects: Vec::new(),
        }
    }

    #[test]
    fn mrz_scan_reports_checks_and_type() {
        let read = fake_read(
            &["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"],
            0.99,
            false,
        );
        let scan = mrz_scan(&read, today());
        assert_eq!(scan.document_type, Some(DocumentType::Passport));
        assert_eq!(scan.source, Some("mrz_td3"));
        assert_eq!(scan.fields.full_name.as_deref(), Some("ANNA MARIA ERIKSSON"));
        assert_eq!(scan.reasons, vec!["expired"]);
        assert!(!scan.checks_passed());
        assert!((scan.confidence - 99.0).abs() < 1e-3);
        let mismatch = check_requested(scan.clone(), RequestedType::NationalId);
        assert_eq!(mismatch.error.unwrap().code, BlockCode::DocumentTypeMismatch);
        assert_eq!(mismatch.fields.last_name.as_deref(), Some("ERIKSSON"));
        assert!(check_requested(scan, RequestedType::Passport).error.is_none());
    }

    #[test]
    fn uncertain_name_is_never_fully_valid() {
        let read = fake_read(
            &["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F3004159ZE184226B<<<<<<8"],
            0.99,
            true,
        );
        let scan = mrz_scan(&read, today());
        assert!(scan.reasons.contains(&"name_uncertain"));
        assert!(scan.confidence <= 50.0);
        assert!(!scan.checks_passed());
    }

    #[test]
    fn td1_with_passport_code_is_a_passport() {
        let read = fake_read(
            &[
                "I<UTOD231458907<<<<<<<<<<<<<<<",
                "7408122F1204159UTO<<<<<<<<<<<6",
                "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
            ],
            0.95,
            false,
        );
        assert_eq!(mrz_document_type(&read.record), DocumentType::NationalId);
    }
}
