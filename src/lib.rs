//! idverify: a self-hostable identity verification API.
//!
//! Map of the crate (arrows point inward: `http` → `verify` → `engines`; `verdict` depends on
//! nothing):
//! - [`config`]: one typed configuration (file + `IDVERIFY_*` environment + flags).
//! - [`telemetry`]: JSON logs, request ids, Prometheus metrics.
//! - [`app`]: wiring and the server with graceful shutdown (drain delay, then grace).
//! - [`readiness`]: the models' warm-up at start-up and the draining flag, behind `/readyz`.
//! - [`healthcheck`]: `idverify healthcheck`, a client of `/healthz` for container health checks.
//! - [`error`]: [`error::ApiError`], the one error type at the HTTP edge.
//! - [`http`]: router, middleware (auth, rate limit, billing, idempotency), input parsing, DTOs, OpenAPI.
//! - [`verify`]: the use cases, with admission control and the `tokio::join!` fan-out.
//! - [`verdict`]: the pure aggregator.
//! - [`engines`]: the engine traits, implemented by the `idverify-face` and `idverify-document` crates.
//! - [`imaging`]: image sniffing and decoding with limits and EXIF orientation.
//! - [`cli`]: admin and evaluation commands; [`bench`] (with [`cpu_info`]): `idverify bench`.

pub mod allocator;
pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod cpu_info;
pub mod engines;
pub mod error;
pub mod healthcheck;
pub mod http;
pub mod imaging;
pub mod readiness;
pub mod telemetry;
pub mod verdict;
pub mod verify;
