//! Test harness: the real router, the real SQLite store, and *fake* engines (named so) whose
//! behaviour is driven by the pixels of tiny synthetic images:
//! - pixel (0,0) red = 255: the image holds a face (the fake detector finds one);
//! - pixel (0,0) green = 255: the image holds a document portrait;
//! - pixel (0,0) blue = 255: the image holds a readable passport;
//! - pixel (1,1) red: the fake "identity" embedded (same value = same person).
#![allow(dead_code)]

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use chrono::NaiveDate;
use idverify::config::{Config, Overrides};
use idverify::engines::{DocumentScan, DocumentScanner, EngineFailure, Engines, FaceAnalyzer, RequestedType};
use idverify_document::{BlockCode, BlockError, Check, DocumentFields, DocumentType};
use idverify_face::{BoundingBox, Embedding, Face, FaceQuality, MatchScore, ModelInfo};
use idverify_store::{Store, StoreConfig};
use image::{ImageFormat, Rgb, RgbImage};

pub const FAKE_THRESHOLD: f32 = 50.0;

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
        MatchScore { distance, confidence, threshold: FAKE_THRESHOLD, is_match: confidence >= FAKE_THRESHOLD }
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
        }
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
                confidence: 0.0,
                checks: vec![],
                reasons: vec![],
                checks_passed: false,
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
                address: None,
            },
            confidence: 96.0,
            checks: vec![Check { name: "document_number_check_digit", passed: true }],
            reasons: vec![],
            checks_passed: true,
            error: mismatch.then(|| {
                BlockError::new(
                    BlockCode::DocumentTypeMismatch,
                    "a passport was found but another type was requested",
                )
            }),
        })
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

pub struct TestApp {
    pub router: Router,
    pub state: idverify::http::AppState,
    pub store: Store,
    pub org_id: String,
    pub api_key: String,
    pub face: Arc<FakeFaceEngine>,
    pub document: Arc<FakeDocumentScanner>,
    pub config: Config,
    _dir: tempdir::Dir,
}

pub mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    pub fn new(label: &str) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("idverify-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

pub struct Options {
    pub tokens: i64,
    pub env: Vec<(&'static str, String)>,
    pub face: FakeFaceEngine,
    /// A PostgreSQL URL to use instead of SQLite (see `test_database_url`).
    pub database_url: Option<String>,
    /// Use the S3 server named by `IDVERIFY_TEST_S3_*`.
    pub s3: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { tokens: 1000, env: vec![], face: FakeFaceEngine::default(), database_url: None, s3: false }
    }
}

pub fn test_database_url() -> Option<String> {
    std::env::var("IDVERIFY_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())
}

/// `IDVERIFY_TEST_S3_*` as `IDVERIFY_S3_*` config entries, when a test S3 server is running.
pub fn test_s3_env() -> Option<Vec<(String, String)>> {
    std::env::var("IDVERIFY_TEST_S3_ENDPOINT").ok().filter(|s| !s.is_empty())?;
    Some(
        std::env::vars()
            .filter_map(|(k, v)| {
                k.strip_prefix("IDVERIFY_TEST_S3_").map(|rest| (format!("IDVERIFY_S3_{rest}"), v))
            })
            .collect(),
    )
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> TestApp {
        let dir = tempdir::new("api");
        let mut env: Vec<(String, String)> = vec![
            ("IDVERIFY_LISTEN".into(), "127.0.0.1:0".into()),
            ("IDVERIFY_DATA_DIR".into(), dir.0.display().to_string()),
            ("IDVERIFY_RATE_LIMIT_BURST".into(), "1000".into()),
            ("IDVERIFY_RATE_LIMIT_PER_SECOND".into(), "1000".into()),
        ];
        env.extend(options.env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        if options.s3 {
            env.extend(test_s3_env().expect("IDVERIFY_TEST_S3_ENDPOINT must be set for an S3 test"));
        }
        let config = Config::load_from(&Overrides::default(), env).unwrap();
        let store =
            Store::connect(&StoreConfig { data_dir: dir.0.clone(), database_url: options.database_url })
                .await
                .unwrap();
        let objects = idverify::app::connect_objects(&config).await.unwrap();
        let org = store.create_org(&format!("org-{}", uuid_like()), options.tokens).await.unwrap();
        let key = store.create_key(&org.id, "test").await.unwrap();
        let face = Arc::new(options.face);
        let document = Arc::new(FakeDocumentScanner::default());
        let engines = Engines { face: face.clone(), document: document.clone() };
        let state = idverify::app::build_state(config.clone(), engines, store.clone(), objects);
        TestApp {
            router: idverify::http::router(state.clone()),
            state,
            store,
            org_id: org.id,
            api_key: key.secret,
            face,
            document,
            config,
            _dir: dir,
        }
    }

    pub async fn balance(&self) -> i64 {
        self.store.balance(&self.org_id).await.unwrap()
    }

    /// The same app served by the real server (`app::Server`) on an ephemeral port.
    pub async fn serve(
        &self,
        shutdown: tokio::sync::oneshot::Receiver<()>,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let server = idverify::app::Server::bind(self.state.clone()).await.unwrap();
        let addr = server.local_addr();
        let handle = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = shutdown.await;
                })
                .await
                .unwrap();
        });
        (addr, handle)
    }
}

pub fn uuid_like() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )
}

/// Builds a multipart/form-data body: `(name, Some(filename), bytes)` for files, `None` for text.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----idverify-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
