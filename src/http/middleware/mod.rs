//! Middleware, in the order a request meets it (outermost first; `super::router` stacks it):
//! 1. [`observe`]: request id (task-local and `x-request-id`), one JSON access-log line, metrics.
//! 2. catch-panic ([`panic_response`]): a panic becomes a 500 with the standard error body.
//! 3. [`deadline`]: the whole request is bounded by `request_timeout_secs`.
//! 4. [`tenant_gate`], on the priced endpoints only. Its steps run in this order, and the first
//!    to refuse decides what the client sees:
//!    1. [`auth`]: API key (401), then rate limit (429);
//!    2. a declared body over the size limit (400);
//!    3. [`idempotency`]: key syntax (400), the body read and fingerprinted by its meaning (400
//!       if it cannot be read), then replay of a stored answer, a key still in use (409) or
//!       reused with other content (422), or the key claimed;
//!    4. [`billing`]: token charge (402), before anything runs;
//!    5. the handler;
//!    6. [`billing`] undoes a failed answer (refund, idempotency claim released), or
//!       [`idempotency`] stores a successful one for replay and [`billing`] captures its charge.
//!       A request that ends without an answer (deadline, client gone, shutdown) is undone by the
//!       billing guard's `drop`; one whose process died, by any replica's reservation sweep.
//!
//! A refusal in steps 4.1 to 4.4 reads and drops the rest of the body before answering
//! ([`drain`]), so that the client sees the answer rather than a broken upload.

mod auth;
mod billing;
mod deadline;
mod drain;
mod idempotency;
mod observe;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use idverify_store::{RateDecision, StoreError};

pub use self::auth::{API_KEY_HEADER, Tenant};
pub use self::deadline::deadline;
pub use self::idempotency::{IDEMPOTENCY_HEADER, REPLAYED_HEADER};
pub use self::observe::{REQUEST_ID_HEADER, observe};

use super::{AppState, Endpoint};
use crate::error::ApiError;

/// The catch-panic layer's handler: log the fact (not the payload, which may hold data), answer 500.
pub fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::Internal.into_response()
}

/// What the tenant gate of one endpoint needs: the state, and the endpoint with its price.
#[derive(Clone)]
pub struct Gate {
    pub state: AppState,
    pub endpoint: Endpoint,
    pub price: i64,
}

pub async fn tenant_gate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    match admit(&gate, &mut req).await {
        Ok(Admission::Run(admitted)) => match run(&gate, *admitted, req, next).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        },
        Ok(Admission::Replay(response)) => response,
        Err(refusal) => drain::then_answer(&gate.state, req, refusal).await,
    }
}

/// A request admitted and charged: its tenant, its rate-limit decision, its claimed idempotency
/// key and the guard that undoes the charge and the claim unless the answer is a success.
struct Admitted {
    tenant: Tenant,
    decision: RateDecision,
    idem_key: Option<String>,
    unwind: billing::Unwind,
}

enum Admission {
    // Boxed: `Admitted` carries a clone of the `AppState` (through `billing::Unwind`).
    Run(Box<Admitted>),
    Replay(Response),
}

/// Steps 1 to 4 of the module doc: everything that may refuse a request, up to its charge.
async fn admit(gate: &Gate, req: &mut Request) -> Result<Admission, Response> {
    let state = &gate.state;
    let tenant = auth::authenticate(state, req.headers()).await.map_err(IntoResponse::into_response)?;
    let decision =
        auth::check_rate_limit(state, &tenant.org_id).await.map_err(IntoResponse::into_response)?;
    if !decision.allowed {
        return Err(auth::rate_limited(&decision));
    }
    let with_rate_headers = |error: ApiError| {
        let mut response = error.into_response();
        auth::rate_headers(response.headers_mut(), &decision);
        response
    };
    refuse_declared_oversize(state, req.headers()).map_err(with_rate_headers)?;
    let idem_key = match idempotency::claim(state, &tenant.org_id, gate.endpoint, req).await {
        Ok(idempotency::Claim::NoKey) => None,
        Ok(idempotency::Claim::Claimed(key)) => Some(key),
        Ok(idempotency::Claim::Replay(stored)) => {
            let mut response = idempotency::replay(stored);
            auth::rate_headers(response.headers_mut(), &decision);
            return Ok(Admission::Replay(response));
        }
        Err(error) => return Err(with_rate_headers(error)),
    };
    // From here on, every way out but a success undoes the charge and the idempotency claim.
    let unwound = deadline::take_unwound_signal(req);
    let unwind = billing::charge(state, &tenant.org_id, gate.endpoint, gate.price, idem_key.clone(), unwound)
        .await
        .map_err(with_rate_headers)?;
    Ok(Admission::Run(Box::new(Admitted { tenant, decision, idem_key, unwind })))
}

/// Steps 5 and 6 of the module doc: run the handler, then undo or keep.
async fn run(gate: &Gate, admitted: Admitted, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let Admitted { tenant, decision, idem_key, mut unwind } = admitted;
    let org_id = tenant.org_id.clone();
    req.extensions_mut().insert(tenant);
    let mut response = next.run(req).await;
    auth::rate_headers(response.headers_mut(), &decision);

    if !response.status().is_success() {
        // The caller got no answer (our fault, overload, or a rejected input): nothing is kept.
        unwind.undo_now(true).await;
        return Ok(response);
    }
    match &idem_key {
        Some(key) => {
            let response = idempotency::store(&gate.state, &org_id, key, response).await?;
            unwind.disarm();
            Ok(response)
        }
        None => Ok(unwind.capture_when_sent(response)),
    }
}

/// A declared body over the limit is refused now rather than after waiting for bytes that would
/// be refused anyway (a client that never sends them would hold the request until the deadline).
fn refuse_declared_oversize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let declared_length =
        headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > state.config.max_body_bytes) {
        return Err(ApiError::invalid("body_too_large", "request body exceeds the size limit"));
    }
    Ok(())
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
