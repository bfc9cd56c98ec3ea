//! `Idempotency-Key`: a request is fingerprinted by its meaning (route, field names, decoded image
//! bytes), so a retry with another multipart boundary or other JSON formatting is a replay.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::common::*;

const KEY: &str = "idempotency-key";

fn assert_replay_of(first: &Reply, replay: &Reply) {
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(replay.status, first.status);
    assert_eq!(replay.text, first.text, "the stored body is sent again, byte for byte");
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.headers["x-request-id"], first.headers["x-request-id"], "the first request's id");
    assert!(first.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn json_with_other_whitespace_and_key_order_is_a_replay() {
    let app = TestApp::spawn().await;
    let (doc, selfie) = (b64(&document_png(1)), b64(&selfie_png(1)));
    let compact = format!(r#"{{"documentImage":"{doc}","faceImage":"{selfie}"}}"#);
    let pretty = format!("{{\n  \"faceImage\" : \"{selfie}\",\n  \"documentImage\" : \"{doc}\"\n}}\n");
    let first = app.post("/v1/identity/verify").header(KEY, "json-1").body("application/json", compact).await;
    let again = app.post("/v1/identity/verify").header(KEY, "json-1").body("application/json", pretty).await;
    assert_replay_of(&first, &again);
    assert_eq!(app.balance().await, 1000 - 3, "charged once");
    assert_eq!(app.document.calls.load(std::sync::atomic::Ordering::SeqCst), 1, "run once");
}

#[tokio::test]
async fn multipart_with_another_boundary_is_a_replay_and_so_is_the_same_images_in_json() {
    let app = TestApp::spawn().await;
    let (doc, selfie) = (document_png(2), selfie_png(2));
    let parts: [Part; 2] = [("documentImage", Some("doc.png"), &doc), ("faceImage", Some("me.png"), &selfie)];
    let first =
        app.post("/v1/identity/verify").header(KEY, "mp-1").multipart_with_boundary("------a1", &parts).await;
    let again =
        app.post("/v1/identity/verify").header(KEY, "mp-1").multipart_with_boundary("------b2", &parts).await;
    assert_replay_of(&first, &again);
    // Our choice: the same images as JSON base64 are the same request.
    let json = json!({"documentImage": b64(&doc), "faceImage": b64(&selfie)});
    let as_json = app.post("/v1/identity/verify").header(KEY, "mp-1").json(json).await;
    assert_replay_of(&first, &as_json);
    assert_eq!(app.balance().await, 1000 - 3);
}

#[tokio::test]
async fn a_key_reused_with_other_content_is_422_and_charges_nothing() {
    let app = TestApp::spawn().await;
    let first =
        app.post("/v1/face/detect").header(KEY, "k-1").json(json!({"image": b64(&selfie_png(4))})).await;
    assert_eq!(first.status, StatusCode::OK);
    for other in [json!({"image": b64(&selfie_png(5))}), json!({"image": b64(&selfie_png(4)), "extra": "x"})]
    {
        let r = app.post("/v1/face/detect").header(KEY, "k-1").json(other).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.json["error"]["code"], "idempotency_key_reused");
    }
    // The same key on another route is another request too.
    let r =
        app.post("/v1/document/scan").header(KEY, "k-1").json(json!({"image": b64(&selfie_png(4))})).await;
    assert_eq!(r.json["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.balance().await, 999);
}

#[tokio::test]
async fn a_concurrent_duplicate_is_409_with_retry_after_then_a_replay() {
    let app = Arc::new(
        TestApp::with(Options {
            face: FakeFaceEngine { delay: Some(Duration::from_millis(700)), ..Default::default() },
            ..Default::default()
        })
        .await,
    );
    let body = json!({"image": b64(&selfie_png(6))});
    let slow = {
        let (app, body) = (app.clone(), body.clone());
        tokio::spawn(async move { app.post("/v1/face/detect").header(KEY, "c-1").json(body).await })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    let duplicate = app.post("/v1/face/detect").header(KEY, "c-1").json(body.clone()).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.text);
    assert_eq!(duplicate.json["error"]["code"], "idempotency_in_progress");
    assert!(duplicate.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let first = slow.await.unwrap();
    let replay = app.post("/v1/face/detect").header(KEY, "c-1").json(body).await;
    assert_replay_of(&first, &replay);
    assert_eq!(app.balance().await, 999, "one charge for three requests");
}

#[tokio::test]
async fn a_body_that_cannot_be_read_is_400_and_leaves_the_key_free() {
    let app = TestApp::spawn().await;
    let r = app.post("/v1/face/detect").header(KEY, "bad-1").json(json!({"image": "not base64!"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"]["code"], "invalid_base64");
    let ok =
        app.post("/v1/face/detect").header(KEY, "bad-1").json(json!({"image": b64(&selfie_png(1))})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(app.balance().await, 999);
}

#[tokio::test]
async fn an_invalid_key_is_400() {
    let app = TestApp::spawn().await;
    for key in ["", &"k".repeat(256), "with space"] {
        let r =
            app.post("/v1/face/detect").header(KEY, key).json(json!({"image": b64(&selfie_png(1))})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{key:?}");
        assert_eq!(r.json["error"]["code"], "invalid_idempotency_key");
    }
    assert_eq!(app.balance().await, 1000);
}
