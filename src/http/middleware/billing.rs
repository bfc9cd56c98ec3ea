//! Tokens: charged before the engines run (402 when the balance is short), given back when the
//! request does not succeed. The [`Unwind`] guard also releases the idempotency claim, on every
//! failure path: in line when the request answers with a failure, from `drop` when it ends
//! without an answer (request deadline, client gone, shutdown grace bound, or a `?` after the
//! charge).

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

    /// The request answered successfully: keep the charge (its reservation is captured) and the
    /// stored answer. A capture that fails leaves the reservation to the sweep, which refunds it:
    /// an answered request may then go free, but an unanswered one is never charged.
    pub(super) async fn capture(mut self) {
        self.armed = false;
        if self.charged > 0
            && let Err(e) = self.state.store.capture(&self.org_id, &self.request_id).await
        {
            tracing::warn!(request_id = %self.request_id, error = %e, "could not capture a charge");
        }
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
