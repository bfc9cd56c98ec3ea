//! Handlers: adapters only. Parse the body into a validated domain input, call one service
//! method, map the outcome to the response DTO.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::AppState;
use super::dto::*;
use super::input::Fields;
use super::middleware::Tenant;
use super::probes::*;
use super::requests::*;
use crate::engines::RequestedType;
use crate::error::ApiError;
use crate::telemetry::current_request_id;
use crate::verify::{ImageSlot, VerifyInput};

fn parse_document_type(value: Option<String>) -> Result<RequestedType, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("auto") => Ok(RequestedType::Auto),
        Some("passport") => Ok(RequestedType::Passport),
        Some("drivers_license") => Ok(RequestedType::DriversLicense),
        Some("national_id") => Ok(RequestedType::NationalId),
        Some(_) => Err(ApiError::InvalidDocumentType),
    }
}

/// Verify an identity: read the document, detect the selfie face, compare it with the portrait.
// The error responses, header parameters and response headers shared by every `/v1` operation
// are added in `openapi.rs`.
#[utoipa::path(
    post, path = "/v1/identity/verify", tag = "identity", operation_id = "verify_identity",
    request_body(content(
        (VerifyMultipartRequest = "multipart/form-data"),
        (VerifyRequest = "application/json")
    )),
    responses((status = 200, body = VerifyResponse, description = "The verdict; a block that failed says so in-band (3 tokens).")),
    security(("api_key" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    tenant: Tenant,
    mut fields: Fields,
) -> Result<Json<VerifyResponse>, ApiError> {
    let (document, selfie) = (ImageSlot::Document.field_name(), ImageSlot::Selfie.field_name());
    fields.only(&[document, selfie, "documentType"])?;
    let max = state.max_image_bytes();
    let input = VerifyInput {
        document_type: parse_document_type(fields.optional_text("documentType")?)?,
        document: fields.image(document, max)?,
        face: fields.image(selfie, max)?,
    };
    let outcome = state.service.verify(&tenant.org_id, input).await?;
    Ok(Json(VerifyResponse::build(current_request_id(), &outcome)))
}

/// Read a document: MRZ (passports, ID cards, visas) or PDF417 barcode (driver's licences).
#[utoipa::path(
    post, path = "/v1/document/scan", tag = "document", operation_id = "scan_document",
    request_body(content((ScanMultipartRequest = "multipart/form-data"), (ScanRequest = "application/json"))),
    responses((status = 200, body = ScanResponse, description = "What was read; a document not read says so in `document.error` (1 token).")),
    security(("api_key" = []))
)]
pub async fn scan(
    State(state): State<AppState>,
    tenant: Tenant,
    mut fields: Fields,
) -> Result<Json<ScanResponse>, ApiError> {
    let document = ImageSlot::Document.field_name();
    fields.only(&[document, "documentType"])?;
    let requested = parse_document_type(fields.optional_text("documentType")?)?;
    let image = fields.image(document, state.max_image_bytes())?;
    let scan = state.service.scan(&tenant.org_id, image, requested).await?;
    Ok(Json(ScanResponse::build(current_request_id(), &scan)))
}

/// Detect faces: boxes, landmarks, scores, and quality of the largest face.
#[utoipa::path(
    post, path = "/v1/face/detect", tag = "face", operation_id = "detect_faces",
    request_body(content((DetectMultipartRequest = "multipart/form-data"), (DetectRequest = "application/json"))),
    responses((status = 200, body = DetectResponse, description = "Every face found; none is `faceDetected: false` (1 token).")),
    security(("api_key" = []))
)]
pub async fn detect(
    State(state): State<AppState>,
    tenant: Tenant,
    mut fields: Fields,
) -> Result<Json<DetectResponse>, ApiError> {
    let photo = ImageSlot::Photo.field_name();
    fields.only(&[photo])?;
    let image = fields.image(photo, state.max_image_bytes())?;
    let outcome = state.service.detect(&tenant.org_id, image).await?;
    Ok(Json(DetectResponse {
        request_id: current_request_id(),
        face_detection: FaceDetectionBlock::from_outcome(&outcome, true),
    }))
}

/// Compare the largest face of two images, with a calibrated confidence.
#[utoipa::path(
    post, path = "/v1/face/compare", tag = "face", operation_id = "compare_faces",
    request_body(content((CompareMultipartRequest = "multipart/form-data"), (CompareRequest = "application/json"))),
    responses((status = 200, body = CompareResponse, description = "The match; an image without a face says so in `faceMatch.error` (1 token).")),
    security(("api_key" = []))
)]
pub async fn compare(
    State(state): State<AppState>,
    tenant: Tenant,
    mut fields: Fields,
) -> Result<Json<CompareResponse>, ApiError> {
    let (source, target) = (ImageSlot::Source.field_name(), ImageSlot::Target.field_name());
    fields.only(&[source, target])?;
    let max = state.max_image_bytes();
    let source = fields.image(source, max)?;
    let target = fields.image(target, max)?;
    let outcome = state.service.compare(&tenant.org_id, source, target).await?;
    Ok(Json(CompareResponse::build(current_request_id(), &outcome, &state.service.model_info())))
}

/// Get a presigned URL to upload an image to S3, for use as `s3://bucket/key` in a later request.
#[utoipa::path(
    post, path = "/v1/uploads", tag = "uploads", operation_id = "create_upload",
    request_body(content((UploadRequest = "application/json"))),
    responses((status = 200, body = UploadResponse, description = "A presigned PUT URL; 400 `s3_not_configured` without S3.")),
    security(("api_key" = []))
)]
pub async fn create_upload(
    State(state): State<AppState>,
    tenant: Tenant,
    mut fields: Fields,
) -> Result<Json<UploadResponse>, ApiError> {
    fields.only(&["contentType"])?;
    let content_type = fields.optional_text("contentType")?.unwrap_or_else(|| "image/jpeg".into());
    let objects = state.objects.as_ref().ok_or_else(|| {
        ApiError::invalid("s3_not_configured", "S3 is not configured on this server (see s3_bucket)")
    })?;
    let upload = objects.presign_upload(&tenant.org_id, &content_type).await.map_err(|e| match e {
        idverify_objects::ObjectError::InvalidContentType(_) => ApiError::invalid(
            "unsupported_content_type",
            "contentType must be image/jpeg, image/png or image/webp",
        ),
        idverify_objects::ObjectError::Unavailable(reason) => {
            tracing::warn!(%reason, "presign failed");
            ApiError::DependencyUnavailable
        }
        other => {
            tracing::error!(error = %other, "presign failed");
            ApiError::Internal
        }
    })?;
    let expires_at = chrono::DateTime::from_timestamp(upload.expires_at_unix as i64, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    Ok(Json(UploadResponse {
        request_id: current_request_id(),
        url: upload.url,
        method: upload.method.to_string(),
        headers: upload.headers.into_iter().collect::<BTreeMap<_, _>>(),
        key: upload.key,
        uri: upload.uri,
        expires_at,
    }))
}

/// What this server is: version, models, face operating point, limits and prices. Free of charge.
#[utoipa::path(get, path = "/v1/info", tag = "info", operation_id = "server_info",
    responses((status = 200, body = InfoResponse, description = "What this server is and accepts (free).")),
    security(("api_key" = []))
)]
pub async fn info(State(state): State<AppState>, _tenant: Tenant) -> Json<InfoResponse> {
    Json(InfoResponse::build(current_request_id(), &state.config, &state.service.model_info()))
}

/// Liveness: the process is up and its runtime answers.
///
/// Never checks the database: restarting this process would not mend it.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok".into() })
}

/// Readiness: models warmed up, not draining.
///
/// The models answered their warm-up inference at start-up and the replica is not draining. The
/// database and S3 are probed and reported; they decide only with `readyz_requires_database`.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = ReadyResponse), (status = 503, body = ReadyResponse)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let timeout = std::time::Duration::from_secs(2);
    let (database, objects) = tokio::join!(
        async { matches!(tokio::time::timeout(timeout, state.store.ping()).await, Ok(Ok(()))) },
        async {
            match &state.objects {
                Some(o) => Some(matches!(tokio::time::timeout(timeout, o.ping()).await, Ok(Ok(())))),
                None => None,
            }
        }
    );
    let readiness = &state.readiness;
    let (models, draining) = (readiness.models_ready(), readiness.is_draining());
    let dependencies = database && objects.unwrap_or(true);
    let ready = models && !draining && (dependencies || !state.config.readyz_requires_database);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let engines = ModelReady::engines(readiness.models());
    (status, Json(ReadyResponse { ready, models, database, objects, draining, engines }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", operation_id = "openapi", responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document())
}
