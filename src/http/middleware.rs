//! Middleware, outermost first (see `super::router`):
//! 1. `observe`: request id (task-local and `x-request-id`), one JSON access-log line, metrics.
//! 2. catch-panic: a panic becomes a 500 with the standard error body.
//! 3. `deadline`: the whole request is bounded by `request_timeout_secs`.
//! 4. `tenant_gate` (on /v1 only): API key (401), rate limit (429), idempotency replay,
//!    token charge (402) before anything runs, refund when the request did not succeed or ended
//!    without an answer (deadline, client gone, shutdown; see `Unwind`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use idverify_store::{Charge, IdempotencyBegin, RateDecision, StoreError, StoredResponse};
use sha2::{Digest, Sha256};

use super::{AppState, Endpoint};
use crate::error::ApiError;
use crate::telemetry::{accept_request_id, with_request_id};

pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const API_KEY_HEADER: &str = "x-api-key";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Every route path (the metric labels besides "unmatched"); see [`Endpoint`].
pub const ROUTES: &[&str] = &super::endpoint::PATHS;

pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = accept_request_id(req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()));
    let route = Endpoint::label_for_path(req.uri().path());
    let method = req.method().clone();
    let mut response = with_request_id(id.clone(), next.run(req)).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.observe_request(route, status, elapsed);
    // Only the route template, status and timing: never headers, bodies or field values.
    tracing::info!(
        request_id = %id,
        method = %method,
        route,
        status,
        latency_ms = (elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

pub async fn deadline(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let limit = Duration::from_secs(state.config.request_timeout_secs);
    let (unwound, unwinding) = tokio::sync::oneshot::channel();
    req.extensions_mut().insert(UnwoundSignal(Arc::new(Mutex::new(Some(unwound)))));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            // The request was dropped just now. Answer once its charge is refunded and its
            // idempotency key released, so that an immediate retry is not refused with 409.
            let _ = tokio::time::timeout(UNWIND_WAIT, unwinding).await;
            ApiError::Timeout.into_response()
        }
    }
}

/// How long a timed-out request's 503 waits for its refund (a store call).
const UNWIND_WAIT: Duration = Duration::from_secs(2);

/// Fires (or is dropped) when a request dropped by [`deadline`] has been unwound; the request
/// extension carries it to [`Unwind`].
#[derive(Clone)]
struct UnwoundSignal(Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>);

impl UnwoundSignal {
    fn take(&self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The catch-panic layer's handler: log the fact (not the payload, which may hold data), answer 500.
pub fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::Internal.into_response()
}

/// The authenticated caller, put in place by [`tenant_gate`].
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

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "store unavailable");
            ApiError::DependencyUnavailable
        }
        other => {
            tracing::error!(error = %other, "store error");
            ApiError::Internal
        }
    }
}

fn rate_headers(headers: &mut HeaderMap, d: &RateDecision) {
    let pairs = [
        ("ratelimit-limit", d.limit as u64),
        ("ratelimit-remaining", d.remaining as u64),
        ("ratelimit-reset", d.reset_seconds),
    ];
    for (name, value) in pairs {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
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

/// What the tenant gate of one endpoint needs: the state, and the endpoint with its price.
#[derive(Clone)]
pub struct Gate {
    pub state: AppState,
    pub endpoint: Endpoint,
    pub price: i64,
}

pub async fn tenant_gate(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    match self::gate(gate, req, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn gate(gate: Gate, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let Gate { state, endpoint, price } = gate;
    // 401: same answer and the same work for missing, malformed, unknown and revoked keys.
    let presented = req.headers().get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let principal =
        state.store.authenticate(&presented).await.map_err(store_error)?.ok_or(ApiError::Unauthorized)?;
    let org_id = principal.org_id.clone();

    // 429
    let decision = state.store.check_rate_limit(&org_id, state.rate_policy()).await.map_err(store_error)?;
    if !decision.allowed {
        let mut response =
            ApiError::RateLimited { retry_after: decision.retry_after_seconds.max(1) }.into_response();
        rate_headers(response.headers_mut(), &decision);
        return Ok(response);
    }

    // A declared body over the limit is refused now rather than after waiting for bytes that would
    // be refused anyway (a client that never sends them would hold the request until the deadline).
    let declared_length = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > state.config.max_body_bytes) {
        return Err(ApiError::invalid("body_too_large", "request body exceeds the size limit"));
    }

    // Idempotency: the fingerprint covers route and body so a reused key with another request is refused.
    let idem_key = idempotency_key(req.headers())?;
    let path = endpoint.path().to_string();
    if let Some(key) = &idem_key {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, state.config.max_body_bytes as usize)
            .await
            .map_err(|_| ApiError::invalid("body_too_large", "request body exceeds the size limit"))?;
        let mut hasher = Sha256::new();
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher
            .update(parts.headers.get(axum::http::header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or(b""));
        hasher.update([0]);
        hasher.update(&bytes);
        let fingerprint = hex(&hasher.finalize());
        match state.store.idempotency_begin(&org_id, key, &fingerprint).await.map_err(store_error)? {
            IdempotencyBegin::Started => {}
            IdempotencyBegin::Replay(stored) => return Ok(replay(stored, &decision)),
            IdempotencyBegin::InProgress | IdempotencyBegin::Mismatch => {
                return Err(ApiError::IdempotencyConflict);
            }
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }

    // 402: charged before the engines run.
    let request_id = crate::telemetry::current_request_id();
    // From here on, a request dropped before it answers (request deadline, client gone, shutdown
    // grace bound) or failing on `?` gets its charge back and releases its idempotency key.
    let mut unwind = Unwind {
        state: state.clone(),
        org_id: org_id.clone(),
        request_id: request_id.clone(),
        path: path.clone(),
        idem_key: idem_key.clone(),
        // Set before the charge is awaited: a refund without a debit is refused by the store.
        charged: price,
        armed: true,
        unwound: req.extensions().get::<UnwoundSignal>().and_then(UnwoundSignal::take),
    };
    if price > 0 {
        match state.store.charge(&org_id, price, &request_id, &path).await {
            Ok(Charge::Charged { .. }) => {}
            Ok(Charge::Insufficient { balance }) => {
                unwind.undo_now(false).await;
                return Err(ApiError::InsufficientTokens { price, balance });
            }
            Err(e) => {
                unwind.undo_now(false).await;
                return Err(store_error(e));
            }
        }
    }

    req.extensions_mut().insert(Tenant { org_id: org_id.clone(), key_id: principal.key_id.clone() });
    let mut response = next.run(req).await;
    rate_headers(response.headers_mut(), &decision);

    if !response.status().is_success() {
        // The caller got no answer (our fault, overload, or a rejected input): nothing is kept.
        unwind.undo_now(true).await;
        return Ok(response);
    }
    if let Some(key) = idem_key {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|_| ApiError::Internal)?;
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string(),
            body: bytes.to_vec(),
        };
        if let Err(e) = state.store.idempotency_complete(&org_id, &key, &stored).await {
            tracing::error!(request_id = %request_id, error = %e, "could not store idempotent response");
        }
        response = Response::from_parts(parts, Body::from(bytes));
    }
    unwind.armed = false;
    Ok(response)
}

/// Undoes a request's charge and idempotency claim when its future ends without answering. The
/// store's refund is idempotent per request id, so racing an in-line refund does no harm.
struct Unwind {
    state: AppState,
    org_id: String,
    request_id: String,
    path: String,
    idem_key: Option<String>,
    /// Tokens to give back (0 for free endpoints).
    charged: i64,
    armed: bool,
    /// Tells [`deadline`] when the unwinding is done (dropped unsent if there was nothing to do).
    unwound: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Unwind {
    /// Undoes the request in line, before it answers: gives back the charge when `refund` (there
    /// is none to give back when the charge itself failed) and releases the idempotency key. Stays
    /// armed while awaiting, so a request dropped meanwhile is still undone by `drop`.
    async fn undo_now(&mut self, refund: bool) {
        let amount = if refund { self.charged } else { 0 };
        undo(&self.state, &self.org_id, amount, &self.request_id, &self.path, self.idem_key.as_deref()).await;
        self.armed = false;
    }
}

impl Drop for Unwind {
    fn drop(&mut self) {
        if !self.armed || (self.charged == 0 && self.idem_key.is_none()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(request_id = %self.request_id, "request dropped outside the runtime; no refund");
            return;
        };
        tracing::warn!(request_id = %self.request_id, "request ended without an answer; undoing its charge");
        let state = self.state.clone();
        let org_id = std::mem::take(&mut self.org_id);
        let request_id = std::mem::take(&mut self.request_id);
        let path = std::mem::take(&mut self.path);
        let idem_key = self.idem_key.take();
        let charged = self.charged;
        let unwound = self.unwound.take();
        // Tracked, so that the server waits for it at shutdown.
        self.state.background.spawn_on(
            async move {
                undo(&state, &org_id, charged, &request_id, &path, idem_key.as_deref()).await;
                if let Some(unwound) = unwound {
                    let _ = unwound.send(());
                }
            },
            &runtime,
        );
    }
}

/// Refunds `amount` tokens (none when 0) and releases the idempotency key, logging failures.
async fn undo(state: &AppState, org_id: &str, amount: i64, request_id: &str, path: &str, key: Option<&str>) {
    if amount > 0
        && let Err(e) = state.store.refund(org_id, amount, request_id, path).await
    {
        tracing::error!(request_id = %request_id, error = %e, "refund failed");
    }
    if let Some(key) = key
        && let Err(e) = state.store.idempotency_abandon(org_id, key).await
    {
        tracing::error!(error = %e, "could not release idempotency key");
    }
}

fn replay(stored: StoredResponse, decision: &RateDecision) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    if let Ok(ct) = HeaderValue::from_str(&stored.content_type) {
        response.headers_mut().insert(axum::http::header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    rate_headers(response.headers_mut(), decision);
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
