//! Presigned uploads end to end against the real S3 server started by `make test` (SeaweedFS):
//! presign through the API, PUT the bytes, verify with the `s3://` reference; another
//! organization's reference is 403.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn upload_then_verify_with_the_s3_reference() {
    if test_s3_env().is_none() {
        eprintln!("SKIP: S3 upload test (IDVERIFY_TEST_S3_ENDPOINT unset)");
        return;
    }
    let app = TestApp::with(Options { s3: true, ..Default::default() }).await;
    let Reply { status, json: upload, .. } =
        app.post_json("/v1/uploads", json!({"contentType": "image/png"})).await;
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
    let selfie = b64(&selfie_png(11));
    let Reply { status, json: body, .. } =
        app.post_json("/v1/identity/verify", json!({"documentImage": uri, "faceImage": selfie})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verified"], true, "{body}");

    // Another organization cannot read it, and cannot tell that it exists.
    let other = app.store.create_org(&format!("other-{}", uuid_like()), 10).await.unwrap();
    let other_key = app.store.create_key(&other.id, "k").await.unwrap().secret;
    let Reply { status, json: body, .. } =
        app.post("/v1/face/detect").key(&other_key).json(json!({"image": uri})).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (403, Some("s3_key_forbidden")));
    let missing = format!(
        "s3://{}/orgs/{}/uploads/does-not-exist",
        upload["uri"].as_str().unwrap().split('/').nth(2).unwrap(),
        other.id
    );
    let Reply { status: status2, json: body2, .. } =
        app.post("/v1/face/detect").key(&other_key).json(json!({"image": missing})).await;
    assert_eq!(status2, 403);
    assert_eq!(body["error"]["message"], body2["error"]["message"]);
    assert_eq!(app.store.balance(&other.id).await.unwrap(), 10, "403s are refunded");
}
