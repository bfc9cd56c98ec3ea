//! Privacy: capture every log line of a run of verify (success, in-band failures, errors) and
//! check that no API key, image data, name, date of birth or document number appears.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use common::*;
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_hold_no_personal_data_or_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::spawn().await;
    let doc = base64::engine::general_purpose::STANDARD.encode(document_png(5));
    let selfie = base64::engine::general_purpose::STANDARD.encode(selfie_png(5));
    let bodies = [
        serde_json::json!({"documentImage": doc, "faceImage": selfie}),
        serde_json::json!({"documentImage": doc, "faceImage": selfie, "documentType": "visa"}),
        serde_json::json!({"documentImage": doc, "faceImage": "@@@"}),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let key = if i == 2 { "idv_wrong_key".to_string() } else { app.api_key.clone() };
        let req = Request::post("/v1/identity/verify")
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(Body::from(body.to_string()))
            .unwrap();
        let status = app.router.clone().oneshot(req).await.unwrap().status();
        assert!(status.is_success() || status.is_client_error());
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("\"route\":\"/v1/identity/verify\""), "the capture works: {logs}");
    for secret in [
        app.api_key.as_str(),
        "idv_wrong_key",
        FAKE_NAME,
        "ERIKSSON",
        FAKE_DOC_NUMBER,
        "1974-08-12",
        &doc[..32],
        &selfie[..32],
    ] {
        assert!(!logs.contains(secret), "log leaks `{secret}`");
    }
}
