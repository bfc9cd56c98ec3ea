//! Fake engines and the images that drive them, through the pixels of tiny synthetic images:
//! - pixel (0,0) red = 255: the image holds a face (the fake detector finds one);
//! - pixel (0,0) green = 255: the image holds a document portrait;
//! - pixel (0,0) blue = 255: the image holds a readable passport;
//! - pixel (1,1) red: the fake "identity" embedded (same value = same person).

use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use idverify::engines::{DocumentScan, DocumentScanner, EngineFailure, FaceAnalyzer, RequestedType};
use idverify::readiness::{ModelCheck, WarmUpFailure};
use idverify_document::{BlockCode, BlockError, Check, DocumentField, DocumentFields, DocumentType};
use idverify_face::{BoundingBox, Embedding, Face, FaceQuality, MatchScore, ModelInfo};
use image::{ImageFormat, Rgb, RgbImage};

pub const FAKE_THRESHOLD: f32 = 50.0;
/// The MRZ lines the fake document scanner reports.
pub const FAKE_MRZ: [&str; 2] =
    ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"];

/// Fake face engine: finds a face where the test image says so; counts its calls.
#[derive(Default)]
pub struct FakeFaceEngine {
    pub calls: AtomicUsize,
    pub delay: Option<Duration>,
    pub panic_on_detect: bool,
}

fn fake_face() -> Face {
    Face {
        bbox: BoundingBox { x: 2.0, y: 2.0, width: 10.0, height: 12.0 },
        landmarks: [[4.0, 5.0], [9.0, 5.0], [6.5, 8.0], [5.0, 11.0], [8.0, 11.0]],
        score: 0.93,
    }
}

impl FaceAnalyzer for FakeFaceEngine {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, EngineFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_detect {
            panic!("fake engine panic");
        }
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
        Ok(if image.get_pixel(0, 0)[0] == 255 { vec![fake_face()] } else { vec![] })
    }
    fn find_portrait(&self, document: &RgbImage) -> Result<Option<Face>, EngineFailure> {
        Ok((document.get_pixel(0, 0)[1] == 255).then(fake_face))
    }
    fn embed(&self, image: &RgbImage, _face: &Face) -> Result<Embedding, EngineFailure> {
        Ok(Embedding(vec![image.get_pixel(1, 1)[0] as f32 / 255.0]))
    }
    fn compare(&self, a: &Embedding, b: &Embedding) -> MatchScore {
        let distance = (a.0[0] - b.0[0]).abs();
        let confidence = (1.0 - distance) * 100.0;
        MatchScore {
            distance,
            confidence,
            threshold: FAKE_THRESHOLD,
            is_match: confidence >= FAKE_THRESHOLD,
            recognizers: idverify_face::DLIB_ALONE,
        }
    }
    /// A fake cascade: "dlib" distances in 0.4..=0.6 go to the fake second recognizer.
    fn needs_second(&self, dlib: &MatchScore) -> bool {
        (0.4..=0.6).contains(&dlib.distance)
    }
    fn embed_second(&self, image: &RgbImage, face: &Face) -> Result<Embedding, EngineFailure> {
        self.embed(image, face)
    }
    /// Accepts up to distance 0.55, where "dlib" alone stops at 0.5.
    fn fuse(&self, dlib: &MatchScore, a: &Embedding, b: &Embedding) -> MatchScore {
        let is_match = (a.0[0] - b.0[0]).abs() <= 0.55;
        MatchScore {
            confidence: if is_match { 75.0 } else { 25.0 },
            is_match,
            recognizers: idverify_face::DLIB_AND_SFACE,
            ..dlib.clone()
        }
    }
    fn quality(&self, _image: &RgbImage, face: &Face) -> FaceQuality {
        FaceQuality {
            face_width_px: face.bbox.width,
            sharpness: 100.0,
            brightness: 120.0,
            yaw_degrees: 0.0,
            roll_degrees: 0.0,
            reasons: vec!["face_too_small"],
        }
    }
    fn model_info(&self) -> ModelInfo {
        ModelInfo {
            detector: "fake-detector".into(),
            recognizer: "fake-recognizer".into(),
            calibration: "fake-calibration".into(),
            target_fmr: 0.001,
            threshold_distance: 0.5,
            threshold_confidence: FAKE_THRESHOLD,
            recognizers: idverify_face::Recognizers::Dlib,
        }
    }
    /// Ready at once (no model; not counted in `calls`).
    fn warm_up(&self) -> Result<Vec<ModelCheck>, WarmUpFailure> {
        Ok(vec![ModelCheck::run("fake_face", "none (fake engine)", || Ok::<_, String>(()))?])
    }
}

/// Fake document engine: a valid TD3 passport when the image says so, else "no document".
#[derive(Default)]
pub struct FakeDocumentScanner {
    pub calls: AtomicUsize,
}

pub const FAKE_NAME: &str = "ANNA MARIA ERIKSSON";
pub const FAKE_DOC_NUMBER: &str = "L898902C3";

impl DocumentScanner for FakeDocumentScanner {
    fn scan(
        &self,
        image: &RgbImage,
        requested: RequestedType,
        _today: NaiveDate,
    ) -> Result<DocumentScan, EngineFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if image.get_pixel(0, 0)[2] != 255 {
            return Ok(DocumentScan {
                document_type: None,
                source: None,
                fields: DocumentFields::default(),
                field_confidence: vec![],
                mrz_lines: vec![],
                confidence: 0.0,
                checks: vec![],
                reasons: vec![],
                error: Some(BlockError::new(BlockCode::NoDocumentFound, "no MRZ or barcode found")),
            });
        }
        let mismatch = !matches!(requested, RequestedType::Auto | RequestedType::Passport);
        Ok(DocumentScan {
            document_type: Some(DocumentType::Passport),
            source: Some("mrz_td3"),
            fields: DocumentFields {
                full_name: Some(FAKE_NAME.into()),
                first_name: Some("ANNA MARIA".into()),
                last_name: Some("ERIKSSON".into()),
                date_of_birth: NaiveDate::from_ymd_opt(1974, 8, 12),
                gender: Some("F".into()),
                nationality: Some("UTO".into()),
                document_number: Some(FAKE_DOC_NUMBER.into()),
                expiration_date: NaiveDate::from_ymd_opt(2032, 4, 15),
                issuing_country: Some("UTO".into()),
                ..Default::default()
            },
            field_confidence: vec![(DocumentField::DocumentNumber, 97.5), (DocumentField::LastName, 91.0)],
            mrz_lines: FAKE_MRZ.iter().map(|l| l.to_string()).collect(),
            confidence: 96.0,
            checks: std::iter::once(Check { name: "document_number_check_digit", passed: true })
                .chain(
                    (requested != RequestedType::Auto)
                        .then_some(Check { name: "document_type_matches", passed: !mismatch }),
                )
                .collect(),
            reasons: vec![],
            error: mismatch.then(|| {
                BlockError::new(
                    BlockCode::DocumentTypeMismatch,
                    "a passport was found but another type was requested",
                )
            }),
        })
    }
    /// Ready at once (no model).
    fn warm_up(&self) -> Result<Vec<ModelCheck>, WarmUpFailure> {
        Ok(vec![ModelCheck::run("fake_document", "none (fake engine)", || Ok::<_, String>(()))?])
    }
}

/// A tiny PNG/JPEG whose pixel (0,0) carries the fake flags and pixel (1,1) the identity.
pub fn image_bytes(face: bool, portrait: bool, passport: bool, identity: u8, format: ImageFormat) -> Vec<u8> {
    let mut img = RgbImage::from_pixel(32, 32, Rgb([10, 10, 10]));
    img.put_pixel(
        0,
        0,
        Rgb([if face { 255 } else { 0 }, if portrait { 255 } else { 0 }, if passport { 255 } else { 0 }]),
    );
    img.put_pixel(1, 1, Rgb([identity, 0, 0]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn document_png(identity: u8) -> Vec<u8> {
    image_bytes(false, true, true, identity, ImageFormat::Png)
}

pub fn selfie_png(identity: u8) -> Vec<u8> {
    image_bytes(true, false, false, identity, ImageFormat::Png)
}

pub fn blank_png() -> Vec<u8> {
    image_bytes(false, false, false, 0, ImageFormat::Png)
}
