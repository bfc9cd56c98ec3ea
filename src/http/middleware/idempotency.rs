//! `Idempotency-Key`: before the charge, a key is claimed under a fingerprint of the request
//! (or its stored answer replayed); after a successful answer, the answer is stored for replay.
//! An unsuccessful request releases its claim (see [`super::billing`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use idverify_store::{IdempotencyBegin, StoredResponse};

use super::REQUEST_ID_HEADER;
use super::store_error;
use crate::error::ApiError;
use crate::http::input::Fields;
use crate::http::{AppState, Endpoint};
use crate::verify::ImageSlot;

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Set to `true` on an answer replayed from an earlier request with the same key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// What to do with a request after presenting its idempotency key.
pub(super) enum Claim {
    /// It has no key: serve it.
    NoKey,
    /// Its key is now claimed (and its body read into fields, to fingerprint it): serve it.
    Claimed(String),
    /// Answer with the response stored under its key.
    Replay(StoredResponse),
}

/// Validates the key (400), reads the body into fields and fingerprints their meaning (400 for a
/// body that cannot be read), and claims the key. A key whose first request is still running is
/// refused with 409 and `Retry-After`; a key reused with other content with 422. The fields are
/// left in the request's extensions for the handler.
pub(super) async fn claim(
    state: &AppState,
    org_id: &str,
    endpoint: Endpoint,
    req: &mut Request,
) -> Result<Claim, ApiError> {
    // Only a POST does something that a retry could repeat.
    if req.method() != axum::http::Method::POST {
        return Ok(Claim::NoKey);
    }
    let Some(key) = idempotency_key(req.headers())? else { return Ok(Claim::NoKey) };
    let (parts, body) = std::mem::take(req).into_parts();
    let mut probe = Request::new(body);
    *probe.method_mut() = parts.method.clone();
    *probe.uri_mut() = parts.uri.clone();
    *probe.headers_mut() = parts.headers.clone();
    *probe.extensions_mut() = parts.extensions.clone();
    let fields = Fields::read(probe, state.max_image_bytes()).await?;
    let image_fields = ImageSlot::ALL.map(ImageSlot::field_name);
    let fingerprint = fields.fingerprint(endpoint.path(), &image_fields, state.max_image_bytes())?;
    *req = Request::from_parts(parts, Body::empty());
    req.extensions_mut().insert(fields);
    // A claim older than any request can run (deadline, shutdown grace) is a dead replica's.
    let stale_after = state.config.reservation_expiry();
    match state.store.idempotency_begin(org_id, &key, &fingerprint, stale_after).await.map_err(store_error)? {
        IdempotencyBegin::Started => Ok(Claim::Claimed(key)),
        IdempotencyBegin::Replay(stored) => Ok(Claim::Replay(stored)),
        IdempotencyBegin::InProgress => {
            Err(ApiError::IdempotencyInProgress { retry_after: IN_PROGRESS_RETRY_SECS })
        }
        IdempotencyBegin::Mismatch => Err(ApiError::IdempotencyKeyReused),
    }
}

/// What a client told "still running" waits before retrying: about one verify.
const IN_PROGRESS_RETRY_SECS: u64 = 1;

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

/// The stored answer, marked as a replay.
pub(super) fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    if let Ok(ct) = HeaderValue::from_str(&stored.content_type) {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    }
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static(REPLAYED_HEADER), HeaderValue::from_static("true"));
    // The replay carries the first answer's request id (observe keeps a request id already set).
    if let Ok(id) = HeaderValue::from_str(&stored.request_id) {
        headers.insert(REQUEST_ID_HEADER, id);
    }
    response
}

/// Stores a successful answer under the claimed key, which also captures the request's charge (one
/// transaction: a stored answer can be fetched again, so it counts as delivered), and gives it
/// back. A failure to store it is logged; the caller still gets the answer, and the sweep later
/// refunds the charge that was not captured.
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
        request_id: crate::telemetry::current_request_id(),
    };
    if let Err(e) = state.store.idempotency_complete(org_id, key, &stored).await {
        let request_id = crate::telemetry::current_request_id();
        tracing::error!(request_id = %request_id, error = %e, "could not store idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
