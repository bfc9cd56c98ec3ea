//! Tokens: charged before the engines run (402 when the balance is short), held as a reservation
//! until the answer is delivered (then captured), given back when the request does not succeed.
//! The [`Unwind`] guard also releases the idempotency claim, on every failure path: in line when
//! the request answers with a failure, from `drop` when it ends without an answer (request
//! deadline, client gone before the last byte, shutdown grace bound, or a `?` after the charge).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::Body as _;
use idverify_store::Charge;
use tokio::sync::oneshot;

use super::store_error;
use crate::error::ApiError;
use crate::http::{AppState, Endpoint};

/// Charges `price` for the request, returning the armed guard that undoes the charge and the
/// idempotency claim `idem_key` unless [`Unwind::disarm`]ed. A failed charge is undone here.
/// (Takes the request's deadline signal rather than the request: a `Body` is not `Sync`, so a
/// borrowed request would make the future not `Send`.)
pub(super) async fn charge(
    state: &AppState,
    org_id: &str,
    endpoint: Endpoint,
    price: i64,
    idem_key: Option<String>,
    unwound: Option<oneshot::Sender<()>>,
) -> Result<Unwind, ApiError> {
    let request_id = crate::telemetry::current_request_id();
    let mut unwind = Unwind {
        state: state.clone(),
        org_id: org_id.to_string(),
        request_id: request_id.clone(),
        endpoint,
        idem_key,
        // Set before the charge is awaited: a refund without a debit is refused by the store.
        charged: price,
        armed: true,
        unwound,
    };
    if price > 0 {
        match state.store.charge(org_id, price, &request_id, endpoint.path()).await {
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
    Ok(unwind)
}

/// Undoes a request's charge and idempotency claim when its future ends without answering. The
/// store's refund is idempotent per request id, so racing an in-line refund does no harm.
pub(super) struct Unwind {
    state: AppState,
    org_id: String,
    request_id: String,
    endpoint: Endpoint,
    idem_key: Option<String>,
    /// Tokens to give back (0 for free endpoints).
    charged: i64,
    armed: bool,
    /// Tells the deadline when the unwinding is done (dropped unsent if there was nothing to do).
    unwound: Option<oneshot::Sender<()>>,
}

impl Unwind {
    /// Undoes the request in line, before it answers: gives back the charge when `refund` (there
    /// is none to give back when the charge itself failed) and releases the idempotency key. Stays
    /// armed while awaiting, so a request dropped meanwhile is still undone by `drop`.
    pub(super) async fn undo_now(&mut self, refund: bool) {
        let amount = if refund { self.charged } else { 0 };
        let path = self.endpoint.path();
        undo(&self.state, &self.org_id, amount, &self.request_id, path, self.idem_key.as_deref()).await;
        self.armed = false;
    }

    /// The answer was stored for replay, which captured the charge in the same transaction.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }

    /// The request answered successfully and keeps no copy of its answer: the charge is captured
    /// once the answer's last byte is handed to the connection. A client gone before that got no
    /// answer, and the dropped body refunds it (through this guard's `drop`).
    pub(super) fn capture_when_sent(self, response: Response) -> Response {
        let (parts, body) = response.into_parts();
        if body.is_end_stream() {
            // Nothing to send: hyper may never poll it.
            self.capture_in_background();
            return Response::from_parts(parts, body);
        }
        Response::from_parts(parts, Body::new(CaptureWhenSent { body, unwind: Some(self) }))
    }

    /// Keeps the charge (its reservation is captured). A capture that fails leaves the reservation
    /// to the sweep, which refunds it: an answered request may then go free, but an unanswered one
    /// is never charged.
    fn capture_in_background(mut self) {
        self.armed = false;
        if self.charged == 0 {
            return;
        }
        let state = self.state.clone();
        let org_id = std::mem::take(&mut self.org_id);
        let request_id = std::mem::take(&mut self.request_id);
        // Tracked, so that the server waits for it at shutdown.
        self.state.background.spawn(async move {
            if let Err(e) = state.store.capture(&org_id, &request_id).await {
                tracing::warn!(request_id = %request_id, error = %e, "could not capture a charge");
            }
        });
    }
}

/// A response body that captures its request's charge when its last frame is handed out.
struct CaptureWhenSent {
    body: Body,
    unwind: Option<Unwind>,
}

impl http_body::Body for CaptureWhenSent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        // The last frame (hyper may not ask again once the body says it has ended), or the end.
        let sent = match &polled {
            Poll::Ready(Some(Ok(_))) => this.body.is_end_stream(),
            Poll::Ready(None) => true,
            _ => false,
        };
        if sent && let Some(unwind) = this.unwind.take() {
            unwind.capture_in_background();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
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
        let path = self.endpoint.path();
        let idem_key = self.idem_key.take();
        let charged = self.charged;
        let unwound = self.unwound.take();
        // Tracked, so that the server waits for it at shutdown.
        self.state.background.spawn_on(
            async move {
                undo(&state, &org_id, charged, &request_id, path, idem_key.as_deref()).await;
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
