//! multipart/form-data request bodies through the real extractor (`Fields::from_request`, the
//! same code path as the handlers): any bytes give fields or a documented 400, never a panic.
#![no_main]
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Request;
use idverify::http::input::{FieldValue, Fields};
use libfuzzer_sys::fuzz_target;

/// The seeds in corpus/multipart use this boundary.
const CONTENT_TYPE: &str = "multipart/form-data; boundary=XB";
/// Small, so the fuzzer reaches the per-part cap (the server uses the image limit).
const LIMIT: u64 = 4096;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    let mut request = Request::builder()
        .method("POST")
        .uri("/v1/identity/verify")
        .header("content-type", CONTENT_TYPE)
        .body(Body::from(data.to_vec()))
        .expect("request");
    match runtime().block_on(Fields::read(request, LIMIT)) {
        Ok(mut fields) => {
            // Every accepted part fits its cap; text parts are UTF-8 by construction.
            for name in ["documentImage", "faceImage", "documentType", "image"] {
                match fields.take(name) {
                    Some(FieldValue::File(bytes)) => assert!(bytes.len() as u64 <= LIMIT),
                    Some(FieldValue::Text(text)) => assert!(text.len() as u64 <= LIMIT / 3 * 4 + 1024),
                    Some(FieldValue::NotText(_)) => panic!("multipart has no JSON values"),
                    None => {}
                }
            }
        }
        Err(e) => assert!(
            matches!(
                e.code(),
                "invalid_multipart"
                    | "duplicate_field"
                    | "invalid_field"
                    | "image_too_large"
                    | "body_too_large"
            ),
            "{}",
            e.code()
        ),
    }
});
