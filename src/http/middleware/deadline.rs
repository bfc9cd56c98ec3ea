//! Bounds the whole request by `request_timeout_secs`. A request dropped at the deadline is
//! answered 503 once its charge is refunded and its idempotency key released (see
//! [`super::billing`]), so that an immediate retry is not refused with 409.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::http::AppState;

/// How long a timed-out request's 503 waits for its refund (a store call).
const UNWIND_WAIT: Duration = Duration::from_secs(2);

pub async fn deadline(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let limit = Duration::from_secs(state.config.request_timeout_secs);
    let (unwound, unwinding) = oneshot::channel();
    req.extensions_mut().insert(UnwoundSignal(Arc::new(Mutex::new(Some(unwound)))));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            // The request was dropped just now: wait for its unwinding, then answer.
            let _ = tokio::time::timeout(UNWIND_WAIT, unwinding).await;
            ApiError::Timeout.into_response()
        }
    }
}

/// Fires (or is dropped) when a request dropped by [`deadline`] has been unwound; the request
/// extension carries it to the billing guard.
#[derive(Clone)]
struct UnwoundSignal(Arc<Mutex<Option<oneshot::Sender<()>>>>);

/// Takes the signal [`deadline`] waits on, for whoever will unwind the request.
pub(super) fn take_unwound_signal(req: &Request) -> Option<oneshot::Sender<()>> {
    let signal = req.extensions().get::<UnwoundSignal>()?;
    signal.0.lock().unwrap_or_else(|e| e.into_inner()).take()
}
