//! Outermost: gives the request its id (task-local and `x-request-id`), writes one JSON
//! access-log line and records the request metrics.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::http::{AppState, Endpoint};
use crate::telemetry::{accept_request_id, with_request_id};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
    // An idempotent replay already carries the id of the request that produced it.
    if !response.headers().contains_key(REQUEST_ID_HEADER)
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}
