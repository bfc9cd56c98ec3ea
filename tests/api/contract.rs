//! The HTTP contract, in process (`oneshot`), with fake engines and the real SQLite store.

use axum::http::StatusCode;
use base64::Engine as _;
use image::ImageFormat;
use serde_json::{Value, json};

use crate::common::*;

fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "body: {}", reply.json);
    assert_eq!(reply.json["error"]["code"], code, "body: {}", reply.json);
    assert!(reply.json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    let id = reply.json["requestId"].as_str().expect("requestId");
    assert_eq!(reply.headers.get("x-request-id").unwrap().to_str().unwrap(), id);
}

#[tokio::test]
async fn verify_multipart_happy_path() {
    let app = TestApp::spawn().await;
    let r = app
        .post_multipart(
            "/v1/identity/verify",
            &[
                ("documentImage", Some("doc.png"), &document_png(7)),
                ("faceImage", Some("selfie.png"), &selfie_png(7)),
                ("documentType", None, b"passport"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let j = &r.json;
    assert_eq!(j["verified"], true, "{j}");
    assert_eq!(j["document"]["documentType"], "passport");
    assert_eq!(j["document"]["fullName"], FAKE_NAME);
    assert_eq!(j["document"]["dateOfBirth"], "1974-08-12");
    assert_eq!(j["document"]["address"], Value::Null, "absent fields are null");
    assert_eq!(j["faceDetection"]["faceDetected"], true);
    assert_eq!(j["faceDetection"]["confidence"], 93.0);
    assert_eq!(j["faceMatch"]["isMatch"], true);
    assert_eq!(j["faceMatch"]["threshold"], FAKE_THRESHOLD as f64);
    // 0.4 × 96 + 0.2 × 93 + 0.4 × 100
    assert!((j["overallConfidence"].as_f64().unwrap() - 97.0).abs() < 0.01, "{j}");
    assert_eq!(j["requestId"].as_str().unwrap(), r.headers["x-request-id"].to_str().unwrap());
    assert_eq!(app.balance().await, 1000 - 3, "verify costs 3 tokens");
}

#[tokio::test]
async fn verify_json_with_base64_base64url_and_data_url() {
    let app = TestApp::spawn().await;
    let doc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(document_png(9));
    let selfie = format!("data:image/png;base64,{}", b64(&selfie_png(9)));
    let r = app.post_json("/v1/identity/verify", json!({"documentImage": doc, "faceImage": selfie})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["verified"], true);
}

#[tokio::test]
async fn partial_failures_are_in_band() {
    let app = TestApp::spawn().await;
    // Document without a portrait or MRZ, selfie without a face.
    let r = app
        .post_json(
            "/v1/identity/verify",
            json!({"documentImage": b64(&blank_png()), "faceImage": b64(&blank_png())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let j = &r.json;
    assert_eq!(j["verified"], false);
    assert_eq!(j["document"]["error"]["code"], "no_document_found");
    assert_eq!(j["document"]["confidence"], 0.0);
    assert_eq!(j["faceDetection"]["error"]["code"], "no_face_detected");
    assert_eq!(j["faceMatch"]["error"]["code"], "portrait_not_found");
    assert_eq!(j["overallConfidence"], 0.0);
    assert_eq!(app.balance().await, 1000 - 3, "an answered request is charged");
}

#[tokio::test]
async fn different_people_do_not_match() {
    let app = TestApp::spawn().await;
    let r = app
        .post_json(
            "/v1/identity/verify",
            json!({"documentImage": b64(&document_png(0)), "faceImage": b64(&selfie_png(255))}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["verified"], false);
    assert_eq!(r.json["faceMatch"]["isMatch"], false);
    assert_eq!(r.json["reasons"], json!(["faces_do_not_match"]));
}

#[tokio::test]
async fn document_type_mismatch_is_reported_not_overridden() {
    let app = TestApp::spawn().await;
    let r = app
        .post_json(
            "/v1/document/scan",
            json!({"documentImage": b64(&document_png(1)), "documentType": "drivers_license"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["document"]["error"]["code"], "document_type_mismatch");
    assert_eq!(r.json["document"]["documentType"], "passport");
    // The mismatch is a failed check of its own, so checksPassed agrees with the list.
    assert_eq!(r.json["document"]["checksPassed"], false);
    assert!(
        r.json["document"]["checks"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "document_type_matches", "passed": false}))
    );
}

#[tokio::test]
async fn info_tells_what_the_server_is_free_of_charge() {
    let app = TestApp::with(Options {
        env: vec![("IDVERIFY_MAX_IMAGE_BYTES", "1234567".into()), ("IDVERIFY_PRICE_VERIFY", "5".into())],
        ..Default::default()
    })
    .await;
    let r = app.get("/v1/info").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = app
        .send(
            axum::http::Request::get("/v1/info")
                .header("x-api-key", &app.api_key)
                .header("idempotency-key", "ignored-on-get")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.json["limits"]["maxImageBytes"], 1234567);
    assert_eq!(r.json["prices"]["verify"], 5);
    assert_eq!(r.json["faceMatch"]["targetFmr"], 0.001);
    assert!(r.json["models"]["textRecognizer"].as_str().unwrap().ends_with(".onnx"));
    assert!(r.json["models"]["cardTextRecognizer"].as_str().unwrap().ends_with("_latin.onnx"));
    assert_eq!(app.balance().await, 1000, "free");
}

#[tokio::test]
async fn checks_passed_is_exactly_every_check_passed() {
    let app = TestApp::spawn().await;
    for document_type in ["auto", "passport", "national_id"] {
        let body = json!({"documentImage": b64(&document_png(1)), "documentType": document_type});
        let r = app.post_json("/v1/document/scan", body).await;
        let checks = r.json["document"]["checks"].as_array().unwrap().clone();
        let all_passed = !checks.is_empty() && checks.iter().all(|c| c["passed"] == true);
        assert_eq!(r.json["document"]["checksPassed"], all_passed, "{document_type}: {}", r.json);
    }
}

#[tokio::test]
async fn scan_reports_field_confidence_and_the_mrz_lines_verify_only_field_confidence() {
    let app = TestApp::spawn().await;
    let r = app.post_json("/v1/document/scan", json!({"documentImage": b64(&document_png(1))})).await;
    assert_eq!(r.json["document"]["fieldConfidence"], json!({"documentNumber": 97.5, "lastName": 91.0}));
    assert_eq!(r.json["mrzLines"], json!(FAKE_MRZ));
    let r = app
        .post_json(
            "/v1/identity/verify",
            json!({"documentImage": b64(&document_png(1)), "faceImage": b64(&selfie_png(1))}),
        )
        .await;
    assert_eq!(r.json["document"]["fieldConfidence"]["documentNumber"], 97.5);
    assert!(r.json.get("mrzLines").is_none(), "the raw MRZ lines are on /v1/document/scan only");
    assert!(r.json["document"].get("mrzLines").is_none());
}

#[tokio::test]
async fn single_endpoints() {
    let app = TestApp::spawn().await;
    let r = app.post_json("/v1/face/detect", json!({"image": b64(&selfie_png(3))})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["faceDetection"]["faceCount"], 1);
    assert_eq!(r.json["faceDetection"]["faces"][0]["landmarks"].as_array().unwrap().len(), 5);
    assert_eq!(r.json["faceDetection"]["quality"]["reasons"], json!(["face_too_small"]));

    let r = app
        .post_json(
            "/v1/face/compare",
            json!({"sourceImage": b64(&selfie_png(3)), "targetImage": b64(&selfie_png(3))}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["faceMatch"]["isMatch"], true);
    assert_eq!(r.json["faceMatch"]["model"]["targetFmr"], 0.001);
    assert_eq!(r.json["faceMatch"]["model"]["recognizers"], json!(["dlib_face_recognition_resnet_v1"]));

    // Inside the (fake) cascade's band the fused score decides, and says so.
    let r = app
        .post_json(
            "/v1/face/compare",
            json!({"sourceImage": b64(&selfie_png(10)), "targetImage": b64(&selfie_png(138))}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["faceMatch"]["isMatch"], true, "{}", r.json);
    assert_eq!(
        r.json["faceMatch"]["model"]["recognizers"],
        json!(["dlib_face_recognition_resnet_v1", "opencv_zoo_sface_2021dec"])
    );

    let r = app
        .post_json(
            "/v1/face/compare",
            json!({"sourceImage": b64(&blank_png()), "targetImage": b64(&selfie_png(3))}),
        )
        .await;
    assert_eq!(r.json["faceMatch"]["error"]["code"], "no_face_detected");

    let r = app.post_json("/v1/document/scan", json!({"documentImage": b64(&document_png(1))})).await;
    assert_eq!(r.json["document"]["documentNumber"], FAKE_DOC_NUMBER);
    assert_eq!(app.balance().await, 1000 - 5, "single endpoints cost 1 token each");
}

#[tokio::test]
async fn auth_failures_look_the_same() {
    let app = TestApp::spawn().await;
    let body = json!({"image": b64(&selfie_png(1))});
    let missing = app.post("/v1/face/detect").without_key().json(body.clone()).await;
    let wrong = app.post("/v1/face/detect").key("idv_nope_nothing").json(body.clone()).await;
    let malformed = app.post("/v1/face/detect").key("x").json(body).await;
    for r in [&missing, &wrong, &malformed] {
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(r.json["error"], missing.json["error"]);
    }
    assert_eq!(app.face.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_input_is_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let before = app.balance().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"documentImage": b64(&document_png(1)), "faceImage": b64(&selfie_png(1)), "documentType": "visa"}),
            "invalid_document_type",
        ),
        (json!({"documentImage": b64(&document_png(1))}), "missing_field"),
        (
            json!({"documentImage": b64(&document_png(1)), "faceImage": b64(b"GIF89a-not-supported")}),
            "unsupported_image_format",
        ),
        (json!({"documentImage": b64(&document_png(1)), "faceImage": "!!!"}), "invalid_base64"),
        (
            json!({"documentImage": b64(&document_png(1)), "faceImage": b64(&selfie_png(1)), "extra": "x"}),
            "unknown_field",
        ),
        (json!({"documentImage": 5, "faceImage": b64(&selfie_png(1))}), "invalid_field"),
        // Unknown is unknown, whatever the value.
        (
            json!({"documentImage": b64(&document_png(1)), "faceImage": b64(&selfie_png(1)), "extra": {"a": 1}}),
            "unknown_field",
        ),
    ];
    for (body, code) in cases {
        let r = app.post_json("/v1/identity/verify", body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, code);
    }
    let r = app.post("/v1/identity/verify").body("application/json", "{not json").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
    let r = app.post("/v1/identity/verify").body("text/plain", "hello").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "unsupported_content_type");
    let r = app
        .post_multipart(
            "/v1/identity/verify",
            &[("faceImage", Some("a.png"), &selfie_png(1)), ("faceImage", Some("b.png"), &selfie_png(1))],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "duplicate_field");
    // A truncated PNG decodes to nothing.
    let png = selfie_png(1);
    let r = app.post_json("/v1/face/detect", json!({"image": b64(&png[..png.len() / 2])})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "image_corrupt");
    assert_eq!(app.balance().await, before, "rejected requests are refunded");
    assert_eq!(app.face.calls.load(std::sync::atomic::Ordering::SeqCst), 0, "engines never ran");
}

#[tokio::test]
async fn oversized_images_are_refused() {
    let app = TestApp::with(Options {
        env: vec![("IDVERIFY_MAX_IMAGE_BYTES", "1000".into())],
        ..Default::default()
    })
    .await;
    let big = image_bytes(true, false, false, 1, ImageFormat::Png);
    let mut padded = big.clone();
    padded.resize(5000, 0);
    let r = app.post_json("/v1/face/detect", json!({"image": b64(&padded)})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "image_too_large");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("1000 bytes"), "the configured limit is stated: {message}");
    let r = app.post_multipart("/v1/face/detect", &[("image", Some("big.png"), &padded)]).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "image_too_large");
}

#[tokio::test]
async fn insufficient_tokens_is_402_and_runs_nothing() {
    let app = TestApp::with(Options { tokens: 2, ..Default::default() }).await;
    let r = app
        .post_json(
            "/v1/identity/verify",
            json!({"documentImage": b64(&document_png(1)), "faceImage": b64(&selfie_png(1))}),
        )
        .await;
    assert_error(&r, StatusCode::PAYMENT_REQUIRED, "insufficient_tokens");
    assert_eq!(app.balance().await, 2);
    assert_eq!(app.document.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    // A cheaper endpoint still works.
    let r = app.post_json("/v1/face/detect", json!({"image": b64(&selfie_png(1))})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.balance().await, 1);
}

#[tokio::test]
async fn rate_limit_is_429_with_headers() {
    let app = TestApp::with(Options {
        env: vec![
            ("IDVERIFY_RATE_LIMIT_BURST", "2".into()),
            ("IDVERIFY_RATE_LIMIT_PER_SECOND", "0.1".into()),
        ],
        ..Default::default()
    })
    .await;
    let body = json!({"image": b64(&selfie_png(1))});
    let a = app.post_json("/v1/face/detect", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["ratelimit-limit"], "2");
    let _ = app.post_json("/v1/face/detect", body.clone()).await;
    let c = app.post_json("/v1/face/detect", body).await;
    assert_error(&c, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(c.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(c.headers["ratelimit-remaining"], "0");
    assert_eq!(app.balance().await, 998, "a refused request is not charged");
}

#[tokio::test]
async fn overload_is_503_with_retry_after_and_refunded() {
    let app = TestApp::with(Options {
        env: vec![("IDVERIFY_MAX_IN_FLIGHT", "1".into()), ("IDVERIFY_QUEUE_WAIT_MS", "50".into())],
        face: FakeFaceEngine { delay: Some(std::time::Duration::from_millis(600)), ..Default::default() },
        ..Default::default()
    })
    .await;
    let body = json!({"image": b64(&selfie_png(1))});
    let (a, b) = tokio::join!(app.post_json("/v1/face/detect", body.clone()), async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        app.post_json("/v1/face/detect", body.clone()).await
    });
    assert_eq!(a.status, StatusCode::OK);
    assert_error(&b, StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert!(b.headers.contains_key("retry-after"));
    assert_eq!(app.balance().await, 999, "the 503 was refunded");
}

#[tokio::test]
async fn an_engine_panic_is_a_500_and_refunded() {
    let app = TestApp::with(Options {
        face: FakeFaceEngine { panic_on_detect: true, ..Default::default() },
        ..Default::default()
    })
    .await;
    let r = app.post_json("/v1/face/detect", json!({"image": b64(&selfie_png(1))})).await;
    assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
    assert!(!r.json.to_string().contains("fake engine panic"), "internal causes are not returned");
    assert_eq!(app.balance().await, 1000);
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_body() {
    let app = TestApp::spawn().await;
    let r = app.post("/v1/nope").without_key().body("application/json", "").await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.get("/v1/face/detect").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn ops_endpoints() {
    let app = TestApp::spawn().await;
    let r = app.get("/healthz").await;
    assert_eq!((r.status, r.text.contains("ok")), (StatusCode::OK, true));
    let r = app.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("\"database\":true"));
    let _ = app.post_json("/v1/face/detect", json!({"image": b64(&selfie_png(1))})).await;
    let Reply { status, text: metrics, .. } = app.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("idverify_http_requests_total{route=\"/v1/face/detect\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("idverify_engine_stage_duration_seconds_count{stage=\"face_detect\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn security_headers_are_set() {
    let app = TestApp::spawn().await;
    let headers = app.get("/healthz").await.headers;
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!headers.contains_key("server"));
    assert!(!headers.contains_key("access-control-allow-origin"));
}
