//! The one error type at the HTTP edge: one status and one stable machine code per variant.
//!
//! Internal causes are logged where they happen and never returned to the caller.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::telemetry::current_request_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON / multipart, a field is missing, duplicated or malformed.
    #[error("{message}")]
    InvalidBody { code: &'static str, message: String },
    #[error("unsupported image format: only JPEG, PNG and WebP are accepted")]
    UnsupportedImageFormat,
    #[error("image is larger than this server's limit of {limit_bytes} bytes")]
    ImageTooLarge { limit_bytes: u64 },
    #[error("{0}")]
    ImageDimensions(String),
    #[error("{0}: the image data is corrupt or truncated")]
    ImageCorrupt(&'static str),
    #[error("documentType must be one of passport, drivers_license, national_id, auto")]
    InvalidDocumentType,
    #[error("missing or invalid x-api-key")]
    Unauthorized,
    #[error("insufficient token balance: this request costs {price}, balance is {balance}")]
    InsufficientTokens { price: i64, balance: i64 },
    #[error("the S3 object is not readable by this organization")]
    S3Forbidden,
    #[error("the Idempotency-Key was already used for a request with different content; use a new key")]
    IdempotencyKeyReused,
    #[error("the first request with this Idempotency-Key is still running; retry after {retry_after} s")]
    IdempotencyInProgress { retry_after: u64 },
    #[error("no such route")]
    NotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("rate limit exceeded, retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("server is busy, retry after {retry_after} s")]
    Overloaded { retry_after: u64 },
    #[error("a dependency (database or object storage) is unavailable, retry later")]
    DependencyUnavailable,
    #[error("the request took too long")]
    Timeout,
    #[error("unexpected error; it is safe to retry")]
    Internal,
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::InvalidBody { code, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidBody { .. }
            | UnsupportedImageFormat
            | ImageTooLarge { .. }
            | ImageDimensions(_)
            | ImageCorrupt(_) => StatusCode::BAD_REQUEST,
            InvalidDocumentType => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            InsufficientTokens { .. } => StatusCode::PAYMENT_REQUIRED,
            S3Forbidden => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            IdempotencyInProgress { .. } => StatusCode::CONFLICT,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Overloaded { .. } | DependencyUnavailable | Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidBody { code, .. } => code,
            UnsupportedImageFormat => "unsupported_image_format",
            ImageTooLarge { .. } => "image_too_large",
            ImageDimensions(_) => "image_dimensions_invalid",
            ImageCorrupt(_) => "image_corrupt",
            InvalidDocumentType => "invalid_document_type",
            Unauthorized => "unauthorized",
            InsufficientTokens { .. } => "insufficient_tokens",
            S3Forbidden => "s3_key_forbidden",
            IdempotencyKeyReused => "idempotency_key_reused",
            IdempotencyInProgress { .. } => "idempotency_in_progress",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            RateLimited { .. } => "rate_limited",
            Overloaded { .. } => "overloaded",
            DependencyUnavailable => "dependency_unavailable",
            Timeout => "timeout",
            Internal => "internal_error",
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after }
            | ApiError::Overloaded { retry_after }
            | ApiError::IdempotencyInProgress { retry_after } => Some(*retry_after),
            ApiError::DependencyUnavailable | ApiError::Timeout => Some(1),
            _ => None,
        }
    }
}

/// Error body: `{"error": {"code", "message"}, "requestId"}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub request_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `image_too_large`.
    pub code: String,
    /// Human-readable explanation; wording may change.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code().to_string(), message: self.to_string() },
            request_id: current_request_id(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::verify::ServiceError> for ApiError {
    fn from(e: crate::verify::ServiceError) -> Self {
        use crate::imaging::ImageError;
        use crate::verify::ServiceError as S;
        match e {
            S::Overloaded => ApiError::Overloaded { retry_after: 1 },
            S::Image { error: ImageError::UnsupportedFormat, .. } => ApiError::UnsupportedImageFormat,
            S::Image { error: ImageError::TooLarge { limit }, .. } | S::S3TooLarge { limit } => {
                ApiError::ImageTooLarge { limit_bytes: limit }
            }
            S::Image { slot, error: ImageError::Corrupt } => ApiError::ImageCorrupt(slot.field_name()),
            S::Image { slot, error: e @ ImageError::BadDimensions { .. } } => {
                ApiError::ImageDimensions(format!("{}: {e}", slot.field_name()))
            }
            S::S3Forbidden => ApiError::S3Forbidden,
            S::S3NotConfigured => {
                ApiError::invalid("s3_not_configured", "s3:// references need S3 configured on this server")
            }
            S::S3Unavailable(reason) => {
                tracing::warn!(%reason, "S3 unavailable");
                ApiError::DependencyUnavailable
            }
            S::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                ApiError::Internal
            }
        }
    }
}
