//! The bodies of the probes `/healthz` (liveness) and `/readyz` (readiness); see README,
//! "Probes and shutdown".

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::readiness::ModelCheck;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    /// Whether the load balancer should send this replica traffic (the HTTP status says the same:
    /// 200 or 503): the models are ready and the replica is not draining (and, with
    /// `readyz_requires_database`, the database and S3 answer).
    pub ready: bool,
    /// Every model answered its warm-up inference at start-up (see `engines`).
    pub models: bool,
    /// The database answered a query within 2 s.
    pub database: bool,
    /// S3 answered within 2 s; null when S3 is not configured.
    pub objects: Option<bool>,
    /// The replica got SIGTERM: it still serves, for `shutdown_drain_delay_secs`, then stops.
    pub draining: bool,
    /// Each model's warm-up at start-up, by what it does (`face_detector`, `text_recognizer`...).
    pub engines: BTreeMap<String, ModelReady>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelReady {
    /// The model file.
    pub model: String,
    pub ok: bool,
    /// How long its warm-up inference took, in milliseconds.
    pub warmup_ms: f64,
}

impl ModelReady {
    pub fn engines(checks: &[ModelCheck]) -> BTreeMap<String, ModelReady> {
        checks
            .iter()
            .map(|c| {
                let warmup_ms = (c.duration.as_secs_f64() * 1e4).round() / 10.0;
                (c.engine.to_string(), ModelReady { model: c.model.to_string(), ok: true, warmup_ms })
            })
            .collect()
    }
}
