//! The HTTP edge: router, middleware, input extraction, DTOs and the OpenAPI document.

pub mod dto;
pub mod endpoint;
pub mod handlers;
pub mod input;
pub mod middleware;
pub mod openapi;
pub mod probes;
pub mod requests;
pub mod vocabulary;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{MethodRouter, get, post};
use idverify_objects::ObjectStore;
use idverify_store::{RatePolicy, Store};
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

pub use self::endpoint::Endpoint;
use crate::config::Config;
use crate::error::ApiError;
use crate::readiness::Readiness;
use crate::telemetry::Metrics;
use crate::verify::VerifyService;

/// Everything a handler may need, typed; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<VerifyService>,
    pub store: Store,
    pub objects: Option<ObjectStore>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Model warm-up and draining, behind `/readyz`.
    pub readiness: Arc<Readiness>,
    /// Work that outlives its request: the refund of a request dropped before it answered. The
    /// server waits for it at shutdown.
    pub background: TaskTracker,
}

impl AppState {
    pub fn max_image_bytes(&self) -> u64 {
        self.config.max_image_bytes
    }

    pub fn rate_policy(&self) -> RatePolicy {
        RatePolicy { per_second: self.config.rate_limit_per_second, burst: self.config.rate_limit_burst }
    }
}

/// The method and handler of each endpoint.
fn handler(endpoint: Endpoint) -> MethodRouter<AppState> {
    match endpoint {
        Endpoint::Verify => post(handlers::verify),
        Endpoint::DocumentScan => post(handlers::scan),
        Endpoint::FaceDetect => post(handlers::detect),
        Endpoint::FaceCompare => post(handlers::compare),
        Endpoint::Uploads => post(handlers::create_upload),
        Endpoint::Info => get(handlers::info),
        Endpoint::Healthz => get(handlers::healthz),
        Endpoint::Readyz => get(handlers::readyz),
        Endpoint::Metrics => get(handlers::metrics),
        Endpoint::OpenApi => get(handlers::openapi),
    }
}

pub fn router(state: AppState) -> Router {
    let mut routes = Router::new();
    for endpoint in Endpoint::ALL {
        // With `metrics_listen` set, /metrics is served there only (see `metrics_router`).
        if endpoint == Endpoint::Metrics && state.config.metrics_addr().is_some() {
            continue;
        }
        let mut route = handler(endpoint);
        // A priced endpoint is a tenant one: it goes through the gate (key, rate, charge).
        if let Some(price) = endpoint.price(&state.config) {
            let gate = middleware::Gate { state: state.clone(), endpoint, price };
            route = route.route_layer(axum::middleware::from_fn_with_state(gate, middleware::tenant_gate));
        }
        routes = routes.route(endpoint.path(), route);
    }

    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes as usize))
        // Inner to outer: the layers below wrap everything above them.
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::deadline))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

/// `/metrics` alone, for the separate listener of `metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(Endpoint::Metrics.path(), handler(Endpoint::Metrics))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}
