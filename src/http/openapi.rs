//! OpenAPI 3.1, generated from the handlers and DTOs; `tests/api/openapi.rs` snapshots it.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

use super::dto::*;
use super::handlers;
use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "idverify", description = "Self-hostable identity verification: document reading, face detection, face comparison."),
    paths(
        handlers::verify, handlers::scan, handlers::detect, handlers::compare, handlers::create_upload,
        handlers::info, handlers::healthz, handlers::readyz, handlers::metrics, handlers::openapi
    ),
    components(schemas(
        VerifyResponse, ScanResponse, DetectResponse, CompareResponse, UploadResponse, HealthResponse, ReadyResponse,
        DocumentBlock, FaceDetectionBlock, FaceMatchBlock, FaceDto, BoundingBoxDto, QualityDto, CheckDto,
        BlockErrorDto, MatchModelDto, FieldConfidenceDto, InfoResponse, InfoModels, InfoFaceMatch, InfoLimits,
        InfoPrices, VerifyRequest, ScanRequest, DetectRequest, CompareRequest, UploadRequest,
        ErrorBody, ErrorDetail
    )),
    modifiers(&ApiKeyScheme)
)]
struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // Keep the snapshot stable across releases of this crate.
    doc.info.version = "1".to_string();
    doc
}
