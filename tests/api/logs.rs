//! Privacy: capture every log line of a run of verify (success, in-band failures, errors) and
//! check that no API key, image data, name, date of birth or document number appears.
//!
//! The capture is a process-wide log subscriber, so the test runs in a child process of its own
//! (this test binary, filtered to this one test): the capture then holds this test's logs only,
//! and the other tests, running in parallel in the parent, are neither captured nor affected.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::*;

/// Set in the child process, which runs the capture itself.
const CHILD: &str = "IDVERIFY_TEST_LOGS_CHILD";
const NAME: &str = "logs::logs_hold_no_personal_data_or_secrets";

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

#[test]
fn logs_hold_no_personal_data_or_secrets() {
    if std::env::var_os(CHILD).is_some() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        return runtime.block_on(capture_and_check());
    }
    let child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "the child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child did not run {NAME}:\n{stdout}\n{stderr}");
}

async fn capture_and_check() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::spawn().await;
    let doc = b64(&document_png(5));
    let selfie = b64(&selfie_png(5));
    let bodies = [
        serde_json::json!({"documentImage": doc, "faceImage": selfie}),
        serde_json::json!({"documentImage": doc, "faceImage": selfie, "documentType": "visa"}),
        serde_json::json!({"documentImage": doc, "faceImage": "@@@"}),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let key = if i == 2 { "idv_wrong_key".to_string() } else { app.api_key.clone() };
        let status = app.post("/v1/identity/verify").key(&key).json(body.clone()).await.status;
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
