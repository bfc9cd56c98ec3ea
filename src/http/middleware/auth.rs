//! Who is calling, and may they call now: the API key (401), then the rate limit (429).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use idverify_store::RateDecision;

use super::store_error;
use crate::error::ApiError;
use crate::http::AppState;

pub const API_KEY_HEADER: &str = "x-api-key";

/// The authenticated caller, put in place by the tenant gate.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org_id: String,
    pub key_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Tenant>().cloned().ok_or(ApiError::Unauthorized)
    }
}

/// 401: same answer and the same work for missing, malformed, unknown and revoked keys.
pub(super) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Tenant, ApiError> {
    let presented = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let principal =
        state.store.authenticate(presented).await.map_err(store_error)?.ok_or(ApiError::Unauthorized)?;
    Ok(Tenant { org_id: principal.org_id, key_id: principal.key_id })
}

/// Takes one request from the org's bucket; the caller answers [`rate_limited`] if not allowed.
pub(super) async fn check_rate_limit(state: &AppState, org_id: &str) -> Result<RateDecision, ApiError> {
    state.store.check_rate_limit(org_id, state.rate_policy()).await.map_err(store_error)
}

/// 429, with the rate headers.
pub(super) fn rate_limited(decision: &RateDecision) -> Response {
    let mut response =
        ApiError::RateLimited { retry_after: decision.retry_after_seconds.max(1) }.into_response();
    rate_headers(response.headers_mut(), decision);
    response
}

pub(super) fn rate_headers(headers: &mut HeaderMap, d: &RateDecision) {
    let pairs = [
        ("ratelimit-limit", d.limit as u64),
        ("ratelimit-remaining", d.remaining as u64),
        ("ratelimit-reset", d.reset_seconds),
    ];
    for (name, value) in pairs {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}
