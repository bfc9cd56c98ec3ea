//! `Idempotency-Key`: before the charge, a key is claimed under a fingerprint of the request
//! (or its stored answer replayed); after a successful answer, the answer is stored for replay.
//! An unsuccessful request releases its claim (see [`super::billing`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use idverify_store::{IdempotencyBegin, StoredResponse};
use sha2::{Digest, Sha256};

use super::store_error;
use crate::error::ApiError;
use crate::http::{AppState, Endpoint};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// What to do with a request after presenting its idempotency key.
pub(super) enum Claim {
    /// It has no key: serve it.
    NoKey,
    /// Its key is now claimed (and its body buffered, to hash it): serve it.
    Claimed(String),
    /// Answer with the response stored under its key.
    Replay(StoredResponse),
}

/// Validates the key (400), fingerprints the request and claims the key; a key in use or reused
/// with another request is refused (409).
pub(super) async fn claim(
    state: &AppState,
    org_id: &str,
    endpoint: Endpoint,
    req: &mut Request,
) -> Result<Claim, ApiError> {
    let Some(key) = idempotency_key(req.headers())? else { return Ok(Claim::NoKey) };
    let body = std::mem::take(req.body_mut());
    let bytes = axum::body::to_bytes(body, state.config.max_body_bytes as usize)
        .await
        .map_err(|_| ApiError::invalid("body_too_large", "request body exceeds the size limit"))?;
    let fingerprint = fingerprint(endpoint, req.headers(), &bytes);
    match state.store.idempotency_begin(org_id, &key, &fingerprint).await.map_err(store_error)? {
        IdempotencyBegin::Started => {
            *req.body_mut() = Body::from(bytes);
            Ok(Claim::Claimed(key))
        }
        IdempotencyBegin::Replay(stored) => Ok(Claim::Replay(stored)),
        IdempotencyBegin::InProgress | IdempotencyBegin::Mismatch => Err(ApiError::IdempotencyConflict),
    }
}

/// An `Idempotency-Key` is 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let valid = value
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic()));
    match valid {
        Some(s) => Ok(Some(s.to_string())),
        None => Err(ApiError::invalid(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// Covers route, content type and body, so that a key reused with another request is refused.
fn fingerprint(endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(endpoint.path().as_bytes());
    hasher.update([0]);
    hasher.update(headers.get(CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or(b""));
    hasher.update([0]);
    hasher.update(body);
    format!("{:x}", hasher.finalize())
}

/// The stored answer, marked as a replay.
pub(super) fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    if let Ok(ct) = HeaderValue::from_str(&stored.content_type) {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    response
}

/// Stores a successful answer under the claimed key and gives it back. A failure to store it is
/// logged; the caller still gets the answer.
pub(super) async fn store(
    state: &AppState,
    org_id: &str,
    key: &str,
    response: Response,
) -> Result<Response, ApiError> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|_| ApiError::Internal)?;
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string(),
        body: bytes.to_vec(),
    };
    if let Err(e) = state.store.idempotency_complete(org_id, key, &stored).await {
        let request_id = crate::telemetry::current_request_id();
        tracing::error!(request_id = %request_id, error = %e, "could not store idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_lowercase_hex_sha256_of_route_content_type_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Stored fingerprints must keep matching across releases.
        assert_eq!(
            fingerprint(Endpoint::FaceDetect, &headers, br#"{"image":"aGk="}"#),
            "f384ac2b951b7c2f6bca3738952a771206bc707a7124d0b81ef5c7ca300dfb2a"
        );
    }
}
