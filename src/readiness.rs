//! Whether a load balancer should send this replica traffic: every model answered a warm-up
//! inference at start-up, and the replica is not draining (it got SIGTERM and is about to stop).
//!
//! The database and S3 are probed by `/readyz` too, but only reported there unless
//! `readyz_requires_database` is set: a blip of a database every replica shares would otherwise
//! take every replica out of the balancer at once (see README, "Probes and shutdown").

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One model's warm-up inference at start-up.
#[derive(Debug, Clone)]
pub struct ModelCheck {
    /// What the model does, e.g. `face_detector`.
    pub engine: &'static str,
    /// The model file in `models_dir`.
    pub model: &'static str,
    pub duration: Duration,
}

/// A model that did not answer its warm-up inference: the server does not start.
#[derive(Debug, thiserror::Error)]
#[error("{engine} did not answer its warm-up inference (model file {model}): {reason}")]
pub struct WarmUpFailure {
    pub engine: &'static str,
    pub model: &'static str,
    pub reason: String,
}

impl ModelCheck {
    /// Times `inference`, the engine's real code path on a generated input.
    pub fn run<T, E: Display>(
        engine: &'static str,
        model: &'static str,
        inference: impl FnOnce() -> Result<T, E>,
    ) -> Result<ModelCheck, WarmUpFailure> {
        let started = Instant::now();
        match inference() {
            Ok(_) => Ok(ModelCheck { engine, model, duration: started.elapsed() }),
            Err(e) => Err(WarmUpFailure { engine, model, reason: e.to_string() }),
        }
    }
}

/// The replica's readiness, shared by the `/readyz` handler and the server's shutdown.
#[derive(Debug, Default)]
pub struct Readiness {
    models: Vec<ModelCheck>,
    draining: AtomicBool,
}

impl Readiness {
    /// `models`: the warm-up of every loaded model (`engines::warm_up`), all of which answered.
    pub fn new(models: Vec<ModelCheck>) -> Readiness {
        Readiness { models, draining: AtomicBool::new(false) }
    }

    pub fn models(&self) -> &[ModelCheck] {
        &self.models
    }

    /// Whether the models answered (a state without any warm-up was never checked).
    pub fn models_ready(&self) -> bool {
        !self.models.is_empty()
    }

    /// From now on `/readyz` answers 503, while requests are still served.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_warm_up_names_the_model_file() {
        let err =
            ModelCheck::run("text_detector", "det.onnx", || Err::<(), _>("bad input shape")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "text_detector did not answer its warm-up inference (model file det.onnx): bad input shape"
        );
        let ok = ModelCheck::run("text_detector", "det.onnx", || Ok::<_, String>(3)).unwrap();
        assert_eq!((ok.engine, ok.model), ("text_detector", "det.onnx"));
    }

    #[test]
    fn draining_is_one_way() {
        let r = Readiness::new(vec![]);
        assert!(!r.models_ready() && !r.is_draining());
        r.start_draining();
        assert!(r.is_draining());
    }
}
