//! Presigned uploads end to end against the real S3 server started by `make test` (SeaweedFS):
//! presign through the API, PUT the bytes, verify with the `s3://` reference; another
//! organization's reference is 403.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: &TestApp, key: &str, path: &str, body: Value) -> (u16, Value) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.router.clone().oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn upload_then_verify_with_the_s3_reference() {
    if test_s3_env().is_none() {
        eprintln!("SKIP: S3 upload test (IDVERIFY_TEST_S3_ENDPOINT unset)");
        return;
    }
    let app = TestApp::with(Options { s3: true, ..Default::default() }).await;
    let key = app.api_key.clone();
    let (status, upload) = call(&app, &key, "/v1/uploads", json!({"contentType": "image/png"})).await;
    assert_eq!(status, 200, "{upload}");
    assert_eq!(app.balance().await, 1000, "uploads are free by default");
    let url = upload["url"].as_str().unwrap();
    let uri = upload["uri"].as_str().unwrap().to_string();
    assert!(upload["key"].as_str().unwrap().starts_with(&format!("orgs/{}/uploads/", app.org_id)));

    let put = reqwest::Client::new()
        .put(url)
        .header("content-type", "image/png")
        .body(document_png(11))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "PUT to the presigned URL: {}", put.status());

    // Mixed input: the document from S3, the selfie as base64.
    use base64::Engine as _;
    let selfie = base64::engine::general_purpose::STANDARD.encode(selfie_png(11));
    let (status, body) =
        call(&app, &key, "/v1/identity/verify", json!({"documentImage": uri, "faceImage": selfie})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verified"], true, "{body}");

    // Another organization cannot read it, and cannot tell that it exists.
    let other = app.store.create_org(&format!("other-{}", uuid_like()), 10).await.unwrap();
    let other_key = app.store.create_key(&other.id, "k").await.unwrap().secret;
    let (status, body) = call(&app, &other_key, "/v1/face/detect", json!({"image": uri})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("s3_key_forbidden")));
    let missing = format!(
        "s3://{}/orgs/{}/uploads/does-not-exist",
        upload["uri"].as_str().unwrap().split('/').nth(2).unwrap(),
        other.id
    );
    let (status2, body2) = call(&app, &other_key, "/v1/face/detect", json!({"image": missing})).await;
    assert_eq!(status2, 403);
    assert_eq!(body["error"]["message"], body2["error"]["message"]);
    assert_eq!(app.store.balance(&other.id).await.unwrap(), 10, "403s are refunded");
}
