//! OpenAPI 3.1, generated from the code: utoipa derives the paths and schemas from the handlers'
//! `#[utoipa::path]` attributes and the DTOs; [`finish`] then adds what every tenant operation
//! shares (its header parameters, error responses and response headers), one error schema per
//! status with its codes, and examples of real answers (`openapi_examples.json`, captured from
//! the real server with real models by `scripts/openapi-examples.sh`). `tests/api/openapi.rs`
//! snapshots the result.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::dto::*;
use super::handlers;
use super::probes::*;
use super::requests::*;
use super::vocabulary::ERROR_CODES;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "idverify", description = "Self-hostable identity verification: document reading, face detection, face comparison."),
    servers((url = "http://127.0.0.1:8080", description = "The default listen address (`listen` in config/default.toml)")),
    paths(
        handlers::verify, handlers::scan, handlers::detect, handlers::compare, handlers::create_upload,
        handlers::info, handlers::healthz, handlers::readyz, handlers::metrics, handlers::openapi
    ),
    components(schemas(
        VerifyResponse, ScanResponse, DetectResponse, CompareResponse, UploadResponse, HealthResponse, ReadyResponse,
        ModelReady,
        DocumentBlock, FaceDetectionBlock, FaceMatchBlock, FaceDto, BoundingBoxDto, QualityDto, CheckDto,
        BlockErrorDto, MatchModelDto, FieldConfidenceDto, InfoResponse, InfoModels, InfoFaceMatch, InfoLimits,
        InfoPrices, VerifyRequest, VerifyMultipartRequest, ScanRequest, ScanMultipartRequest,
        DetectRequest, DetectMultipartRequest, CompareRequest, CompareMultipartRequest, UploadRequest
    ))
)]
struct ApiDoc;

/// The document served at `/openapi.json`, built once.
pub fn document() -> Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        let mut doc = ApiDoc::openapi();
        // Keep the snapshot stable across releases of this crate.
        doc.info.version = "1".to_string();
        finish(serde_json::to_value(doc).expect("the OpenAPI document serializes"))
    });
    DOCUMENT.clone()
}

/// Real answers of the server, by operation id and by status (see the module doc).
const EXAMPLES: &str = include_str!("openapi_examples.json");

/// The error statuses a tenant operation can answer (see `finish` for which apply to which).
const TENANT_ERRORS: [u16; 9] = [400, 401, 402, 403, 409, 422, 429, 500, 503];

fn finish(mut doc: Value) -> Value {
    let examples: Value = serde_json::from_str(EXAMPLES).expect("openapi_examples.json is JSON");
    let schemas = doc["components"]["schemas"].as_object_mut().expect("the document has schemas");
    require_null_valued_fields(schemas);
    for (status, name, codes) in ERROR_CODES {
        if TENANT_ERRORS.contains(status) {
            add_error_schemas(schemas, name, codes);
        }
    }
    doc["components"]["securitySchemes"] = json!({
        "api_key": {"type": "apiKey", "in": "header", "name": "x-api-key",
            "description": "The organization's API key (`idverify org create` prints one)."}
    });
    for item in doc["paths"].as_object_mut().expect("the document has paths").values_mut() {
        for (method, operation) in item.as_object_mut().expect("a path item is an object").iter_mut() {
            let id = operation["operationId"].as_str().unwrap_or_default().to_string();
            let tenant = operation.get("security").is_some();
            // A tenant GET (no body) takes no Idempotency-Key and has no 400, 402, 403, 409 or 422.
            let post = method == "post";
            if tenant {
                add_tenant_parameters(operation, post);
                add_error_responses(operation, &examples, |status| match status {
                    403 => post && id != "create_upload",
                    400 | 402 | 409 | 422 => post,
                    _ => true,
                });
            }
            let responses = operation["responses"].as_object_mut().expect("an operation has responses");
            for (status, response) in responses.iter_mut() {
                add_response_headers(response, status, tenant, tenant && post);
            }
            if let Some(example) = examples.get(&id).and_then(|e| e.get("200")) {
                operation["responses"]["200"]["content"]["application/json"]["examples"] = example.clone();
            }
        }
    }
    doc
}

/// Every response field that utoipa made nullable (an `Option`) is sent as `null` when absent
/// (see `dto.rs`), so it is required; a request field that may be absent stays optional.
fn require_null_valued_fields(schemas: &mut Map<String, Value>) {
    for (name, schema) in schemas.iter_mut() {
        if name.ends_with("Request") {
            continue;
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { continue };
        let nullable: Vec<Value> =
            properties.iter().filter(|(_, p)| is_nullable(p)).map(|(k, _)| Value::from(k.as_str())).collect();
        if nullable.is_empty() {
            continue;
        }
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        let mut names: Vec<Value> = properties.keys().map(|k| Value::from(k.as_str())).collect();
        names.retain(|k| required.contains(k) || nullable.contains(k));
        schema["required"] = Value::Array(names);
    }
}

fn is_nullable(property: &Value) -> bool {
    let null_type = |t: &Value| t == "null" || t.as_array().is_some_and(|a| a.iter().any(|t| t == "null"));
    property.get("type").is_some_and(null_type)
        || property["oneOf"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s.get("type").is_some_and(null_type)))
}

/// `{Name}Error` → `{Name}ErrorDetail` → `{Name}ErrorCode` (the codes this status can carry).
fn add_error_schemas(schemas: &mut Map<String, Value>, name: &str, codes: &[&str]) {
    schemas.insert(
        format!("{name}ErrorCode"),
        json!({"type": "string", "enum": codes, "description": "Stable machine-readable code."}),
    );
    schemas.insert(
        format!("{name}ErrorDetail"),
        json!({
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"$ref": format!("#/components/schemas/{name}ErrorCode")},
                "message": {"type": "string", "description": "Human-readable explanation; wording may change."}
            }
        }),
    );
    schemas.insert(
        format!("{name}Error"),
        json!({
            "type": "object", "required": ["error", "requestId"],
            "description": "Every error answer has this shape: `{\"error\": {\"code\", \"message\"}, \"requestId\"}`.",
            "properties": {
                "error": {"$ref": format!("#/components/schemas/{name}ErrorDetail")},
                "requestId": {"type": "string"}
            }
        }),
    );
}

fn add_tenant_parameters(operation: &mut Value, idempotent: bool) {
    let mut parameters = vec![
        json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes retries safe: a request with the same meaning (route, field names, \
                decoded images) within 24 h gets the first answer again, with `idempotent-replayed: true`, \
                and is not charged again. Another request under the same key is 422; a retry while the \
                first still runs is 409.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7E]{1,255}$"}
        }),
        json!({
            "name": "x-request-id", "in": "header", "required": false,
            "description": "Your id for this request, echoed in the `x-request-id` response header and \
                `requestId`, when it is 1 to 64 of `A-Z a-z 0-9 - _`; otherwise the server makes one.",
            "schema": {"type": "string"}
        }),
    ];
    if !idempotent {
        parameters.remove(0);
    }
    let list = operation
        .as_object_mut()
        .expect("an operation is an object")
        .entry("parameters")
        .or_insert(json!([]));
    list.as_array_mut().expect("parameters are a list").extend(parameters);
}

fn add_error_responses(operation: &mut Value, examples: &Value, applies: impl Fn(u16) -> bool) {
    let responses = operation["responses"].as_object_mut().expect("an operation has responses");
    for status in TENANT_ERRORS {
        if !applies(status) {
            continue;
        }
        let name = ERROR_CODES.iter().find(|(s, _, _)| *s == status).map(|(_, n, _)| *n).unwrap_or_default();
        let mut content = json!({"schema": {"$ref": format!("#/components/schemas/{name}Error")}});
        if let Some(example) = error_examples(examples, status) {
            content["examples"] = example;
        }
        responses.insert(
            status.to_string(),
            json!({"description": error_description(status), "content": {"application/json": content}}),
        );
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Bad request; nothing is charged.",
        401 => "Missing, malformed, unknown or revoked `x-api-key` (one answer for all).",
        402 => "The balance is below this endpoint's price; nothing runs.",
        403 => "An S3 reference this organization may not read.",
        409 => "The first request with this `Idempotency-Key` is still running; retry after `Retry-After`.",
        422 => "This `Idempotency-Key` was used for a request with other content.",
        429 => "Rate limit exceeded; retry after `Retry-After`.",
        500 => "Unexpected error; refunded; safe to retry.",
        _ => "Engines saturated, database or S3 unavailable, or the request took too long; refunded.",
    }
}

/// The captured answers of a status; 500 and 503 cannot be provoked from outside, so theirs are
/// the bodies the server's own error type writes.
fn error_examples(captured: &Value, status: u16) -> Option<Value> {
    if let Some(found) = captured.get("errors").and_then(|e| e.get(status.to_string())) {
        return Some(found.clone());
    }
    let errors = match status {
        500 => vec![ApiError::Internal],
        503 => {
            vec![ApiError::Overloaded { retry_after: 1 }, ApiError::DependencyUnavailable, ApiError::Timeout]
        }
        _ => return None,
    };
    let mut examples = Map::new();
    for error in errors {
        let body = json!({
            "error": {"code": error.code(), "message": error.to_string()},
            "requestId": "5f0c6b4e-2a57-4d0e-9a43-8f1f0b2c7d19"
        });
        examples.insert(error.code().to_string(), json!({"summary": error.code(), "value": body}));
    }
    Some(Value::Object(examples))
}

fn add_response_headers(response: &mut Value, status: &str, tenant: bool, idempotent: bool) {
    let integer = |description: &str, required: bool| json!({"description": description, "required": required, "schema": {"type": "integer", "minimum": 0}});
    let mut headers = Map::new();
    headers.insert(
        "x-request-id".into(),
        json!({"description": "The request's id (also `requestId` in JSON bodies); a replay carries the first request's.",
            "required": true, "schema": {"type": "string"}}),
    );
    // The rate limit is looked up right after the API key: every answer past that carries it
    // (a 500 or 503 from outside the handler may not).
    if tenant && status != "401" {
        let required = !matches!(status, "500" | "503");
        headers.insert("RateLimit-Limit".into(), integer("Requests allowed in a burst.", required));
        headers
            .insert("RateLimit-Remaining".into(), integer("Requests left in the current burst.", required));
        headers.insert("RateLimit-Reset".into(), integer("Seconds until the burst is full again.", required));
    }
    if tenant && matches!(status, "409" | "429" | "503") {
        headers.insert("Retry-After".into(), integer("Seconds to wait before retrying.", true));
    }
    if idempotent && status == "200" {
        headers.insert(
            "idempotent-replayed".into(),
            json!({"description": "`true` on an answer replayed for a repeated `Idempotency-Key`.",
                "required": false, "schema": {"type": "string", "enum": ["true"]}}),
        );
    }
    response["headers"] = Value::Object(headers);
}
