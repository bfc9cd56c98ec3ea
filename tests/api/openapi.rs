//! The OpenAPI document is generated from the code; this snapshot makes every contract change
//! visible in review. Regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p idverify --test api openapi`.
//! The other tests keep the document's enums equal to what the code can send, and its examples
//! valid against its own schemas (`scripts/openapi-examples.sh` recaptures them).

use std::path::Path;

use idverify::error::ApiError;
use idverify::http::vocabulary::*;
use serde_json::Value;

fn snapshot() -> std::path::PathBuf {
    idverify_testkit::workspace_root().join("tests/snapshots/openapi.json")
}

fn document() -> Value {
    idverify::http::openapi::document()
}

#[test]
fn openapi_document_matches_the_snapshot() {
    let text = serde_json::to_string_pretty(&document()).unwrap() + "\n";
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
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["servers"][0]["url"].as_str().unwrap().starts_with("http://"));
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

const IMAGE_OPERATIONS: [&str; 4] =
    ["/v1/identity/verify", "/v1/document/scan", "/v1/face/detect", "/v1/face/compare"];

#[test]
fn image_operations_take_binary_parts_or_json_strings_and_share_the_tenant_contract() {
    let doc = document();
    for path in IMAGE_OPERATIONS {
        let operation = &doc["paths"][path]["post"];
        let content = &operation["requestBody"]["content"];
        let multipart = resolve(&doc, &content["multipart/form-data"]["schema"]);
        let json = resolve(&doc, &content["application/json"]["schema"]);
        for (name, part) in multipart["properties"].as_object().unwrap() {
            if name == "documentType" {
                continue;
            }
            assert_eq!(part["format"], "binary", "{path} multipart {name}");
            assert_eq!(part["contentMediaType"], "image/*", "{path} multipart {name}");
            assert_eq!(json["properties"][name]["type"], "string", "{path} json {name}");
            assert_eq!(json["properties"][name]["minLength"], 1, "{path} json {name}");
        }
        assert_eq!(json["additionalProperties"], false, "{path}: unknown fields are refused");
        let parameters: Vec<&str> =
            operation["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(parameters, ["Idempotency-Key", "x-request-id"], "{path}");
        for status in ["200", "400", "401", "402", "403", "409", "422", "429", "500", "503"] {
            let response = &operation["responses"][status];
            assert_eq!(response["headers"]["x-request-id"]["required"], true, "{path} {status}");
            assert!(
                response["content"]["application/json"]["examples"].is_object(),
                "{path} {status} example"
            );
        }
        for status in ["409", "429", "503"] {
            assert_eq!(operation["responses"][status]["headers"]["Retry-After"]["required"], true);
        }
        assert_eq!(operation["responses"]["200"]["headers"]["RateLimit-Remaining"]["required"], true);
        assert!(operation["responses"]["200"]["headers"]["idempotent-replayed"].is_object());
    }
}

/// A property that utoipa makes nullable is sent as `null` and so required; one that is skipped
/// when empty is neither nullable nor required.
#[test]
fn null_valued_fields_are_required_and_skipped_ones_are_not_nullable() {
    let doc = document();
    let block = &doc["components"]["schemas"]["DocumentBlock"];
    let required = block["required"].as_array().unwrap();
    for field in ["fullName", "dateOfBirth", "documentType", "error"] {
        assert!(required.contains(&Value::from(field)), "DocumentBlock.{field}");
    }
    let detection = &doc["components"]["schemas"]["FaceDetectionBlock"];
    assert!(!detection["required"].as_array().unwrap().contains(&Value::from("faces")));
    assert_eq!(detection["properties"]["faces"]["type"], "array");
}

/// Every `ApiError` (the match has no wildcard: a new variant must be listed here).
fn every_api_error() -> Vec<ApiError> {
    use ApiError::*;
    let all = vec![
        InvalidBody { code: "invalid_json", message: String::new() },
        UnsupportedImageFormat,
        ImageTooLarge { limit_bytes: 1 },
        ImageDimensions(String::new()),
        ImageCorrupt("image"),
        InvalidDocumentType,
        Unauthorized,
        InsufficientTokens { price: 1, balance: 0 },
        S3Forbidden,
        IdempotencyKeyReused,
        IdempotencyInProgress { retry_after: 1 },
        NotFound,
        MethodNotAllowed,
        RateLimited { retry_after: 1 },
        Overloaded { retry_after: 1 },
        DependencyUnavailable,
        Timeout,
        Internal,
    ];
    for error in &all {
        match error {
            InvalidBody { .. }
            | UnsupportedImageFormat
            | ImageTooLarge { .. }
            | ImageDimensions(_)
            | ImageCorrupt(_)
            | InvalidDocumentType
            | Unauthorized
            | InsufficientTokens { .. }
            | S3Forbidden
            | IdempotencyKeyReused
            | IdempotencyInProgress { .. }
            | NotFound
            | MethodNotAllowed
            | RateLimited { .. }
            | Overloaded { .. }
            | DependencyUnavailable
            | Timeout
            | Internal => {}
        }
    }
    all
}

fn rust_sources(dir: &Path) -> Vec<String> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            texts.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            texts.push(std::fs::read_to_string(&path).unwrap());
        }
    }
    texts
}

/// The string literals that follow `marker` (which ends where a literal starts) in `texts`.
fn literals_after(texts: &[String], marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for text in texts {
        for (start, _) in text.match_indices(marker) {
            let rest = &text[start + marker.len()..];
            let rest = rest.trim_start();
            if let Some(literal) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                found.push(literal.to_string());
            }
        }
    }
    assert!(!found.is_empty(), "no `{marker}` found: the test reads the wrong files");
    found
}

fn assert_documented(found: Vec<String>, documented: &[&str], what: &str) {
    for value in found {
        assert!(documented.contains(&value.as_str()), "{what} `{value}` is sent but not in the OpenAPI enum");
    }
}

#[test]
fn every_error_code_the_server_sends_is_in_its_status_enum() {
    for error in every_api_error() {
        let status = error.status().as_u16();
        assert!(error_codes(status).contains(&error.code()), "{status} {} not documented", error.code());
    }
    let root = idverify_testkit::workspace_root();
    let sources = rust_sources(&root.join("src"));
    assert_documented(literals_after(&sources, "ApiError::invalid("), error_codes(400), "400 code");
    // The document shows each status's codes as the enum of `{Name}ErrorCode`.
    let doc = document();
    for (status, name, codes) in ERROR_CODES {
        if let Some(schema) = doc["components"]["schemas"].get(format!("{name}ErrorCode")) {
            assert_eq!(schema["enum"], serde_json::json!(codes), "{status}");
        }
    }
}

#[test]
fn every_check_reason_and_block_code_the_engines_send_is_in_its_enum() {
    let root = idverify_testkit::workspace_root();
    let document = rust_sources(&root.join("crates/document/src"));
    let service = rust_sources(&root.join("src"));
    let face = rust_sources(&root.join("crates/face/src"));
    let all: Vec<String> = document.iter().chain(&service).cloned().collect();
    assert_documented(literals_after(&all, "Check { name:"), CHECK_NAMES, "check");
    assert_documented(literals_after(&all, "CheckDigit { name:"), CHECK_NAMES, "check");
    assert_documented(literals_after(&document, "reasons.push("), DOCUMENT_REASONS, "document reason");
    let verify = vec![std::fs::read_to_string(root.join("src/verify.rs")).unwrap()];
    assert_documented(literals_after(&verify, "reasons.push("), DOCUMENT_REASONS, "document reason");
    let verdict = vec![std::fs::read_to_string(root.join("src/verdict.rs")).unwrap()];
    assert_documented(literals_after(&verdict, "reasons.push("), VERDICT_REASONS, "verdict reason");
    assert_documented(literals_after(&face, "reasons.push("), QUALITY_REASONS, "quality reason");
    let block = vec![std::fs::read_to_string(root.join("crates/document/src/block.rs")).unwrap()];
    assert_documented(literals_after(&block, "=>"), BLOCK_ERROR_CODES, "block error code");
    assert_documented(literals_after(&document, "source: Some("), DOCUMENT_SOURCES, "source");
    let mrz = vec![std::fs::read_to_string(root.join("crates/document/src/mrz.rs")).unwrap()];
    let sources: Vec<String> =
        literals_after(&mrz, "=>").into_iter().filter(|s| s.starts_with("mrz_")).collect();
    assert_documented(sources, DOCUMENT_SOURCES, "source");
}

#[test]
fn every_example_is_valid_against_its_schema() {
    let doc = document();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let Some(media) = response["content"].get("application/json") else { continue };
                let Some(examples) = media["examples"].as_object() else { continue };
                for (name, example) in examples {
                    let at = format!("{method} {path} {status} example {name}");
                    if let Err(e) = validate(&doc, &example["value"], &media["schema"], "") {
                        panic!("{at}: {e}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4 * 10, "only {checked} examples");
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The JSON Schema subset the document uses: `$ref`, `oneOf`, `type`, `enum`, `required`,
/// `properties`, `additionalProperties: false`, `items`, `minimum`.
fn validate(doc: &Value, value: &Value, schema: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema["oneOf"].as_array() {
        return match options.iter().any(|s| validate(doc, value, s, at).is_ok()) {
            true => Ok(()),
            false => Err(format!("{at}: {value} matches no oneOf option")),
        };
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => vec![other.as_str().unwrap_or_default()],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not in {allowed:?}"));
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64())
        && number < minimum
    {
        return Err(format!("{at}: {number} < {minimum}"));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                return Err(format!("{at}: required {name} missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => validate(doc, field, property, &format!("{at}.{name}"))?,
                None if properties.is_some() && schema["additionalProperties"].is_null() => {
                    return Err(format!("{at}.{name} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, item) in list.iter().enumerate() {
            validate(doc, item, items, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn the_readme_shows_the_client_examples_the_suite_runs() {
    let root = idverify_testkit::workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (fence, path) in
        [("python", "examples/python/verify.py"), ("typescript", "examples/typescript/verify.ts")]
    {
        let code = std::fs::read_to_string(root.join(path)).unwrap();
        assert!(
            readme.contains(&format!("```{fence}\n{code}```")),
            "README shows another {path}: run python3 scripts/readme-examples.py"
        );
    }
}
