//! The OpenAPI document is generated from the code; this snapshot makes every contract change
//! visible in review. Regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p idverify --test api openapi`.

fn snapshot() -> std::path::PathBuf {
    idverify_testkit::workspace_root().join("tests/snapshots/openapi.json")
}

#[test]
fn openapi_document_matches_the_snapshot() {
    let doc = idverify::http::openapi::document();
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(snapshot(), &text).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(snapshot()).expect("snapshot missing: run with UPDATE_SNAPSHOTS=1");
    assert!(
        text == expected,
        "the API contract changed: review, then UPDATE_SNAPSHOTS=1 cargo test -p idverify --test api openapi"
    );
}

#[test]
fn openapi_is_3_1_and_lists_every_endpoint() {
    let doc = serde_json::to_value(idverify::http::openapi::document()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // Every routed path is documented, and nothing else.
    let mut documented: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let mut routed: Vec<&str> = idverify::http::Endpoint::ALL.iter().map(|e| e.path()).collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    let verify = &doc["components"]["schemas"]["VerifyResponse"]["properties"];
    for field in ["verified", "document", "faceDetection", "faceMatch", "overallConfidence", "requestId"] {
        assert!(verify.get(field).is_some(), "VerifyResponse.{field} missing");
    }
}
