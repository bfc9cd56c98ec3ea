//! One ONNX Runtime for the whole process.
//!
//! The shared library is loaded dynamically from the models directory (where `make models` puts
//! it), so the server needs nothing installed system-wide; `ORT_DYLIB_PATH` may override it.
//! Engines load their models as [`SessionPool`]s (or single sessions with [`load_session`]); both
//! are safe to call from any thread.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

mod denormals;
mod pool;

pub use denormals::{FlushDenormals, denormals_flushed};
pub use ort;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
pub use pool::SessionPool;

/// File name of the ONNX Runtime shared library inside the models directory.
pub const LIBRARY_FILE: &str = "libonnxruntime.so";

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime library not found at {0} (run `make models`)")]
    LibraryMissing(PathBuf),
    #[error("could not load ONNX Runtime from {path}: {reason}")]
    LibraryLoad { path: PathBuf, reason: String },
    #[error("model file not found: {0} (run `make models`)")]
    ModelMissing(PathBuf),
    #[error("could not load model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

impl From<ort::Error> for OnnxError {
    fn from(e: ort::Error) -> Self {
        OnnxError::Inference(e.to_string())
    }
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Where the runtime library is looked for: `ORT_DYLIB_PATH` if set, else `models_dir/libonnxruntime.so`.
pub fn library_path(models_dir: &Path) -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => models_dir.join(LIBRARY_FILE),
    }
}

/// Loads ONNX Runtime once per process and returns the shared environment.
pub fn environment(models_dir: &Path) -> Result<Environment, OnnxError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let path = library_path(models_dir);
    if !path.is_file() {
        return Err(OnnxError::LibraryMissing(path));
    }
    let load_err = |reason: String| OnnxError::LibraryLoad { path: path.clone(), reason };
    let env = ort::init_from(&path)
        .map_err(|e| load_err(e.to_string()))?
        .with_name("idverify")
        .with_telemetry(false)
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    let _ = ENVIRONMENT.set(env.clone());
    Ok(env)
}

/// Builds a session for one model file with a fixed number of intra-op threads.
///
/// `Session::run` needs `&mut`: engines share sessions through a [`SessionPool`].
pub fn load_session(
    models_dir: &Path,
    model_file: &Path,
    intra_threads: usize,
) -> Result<Session, OnnxError> {
    let env = environment(models_dir)?;
    if !model_file.is_file() {
        return Err(OnnxError::ModelMissing(model_file.to_path_buf()));
    }
    // Builder errors hold non-Send state: turn them into strings right here.
    let model_err = |reason: String| OnnxError::ModelLoad { path: model_file.to_path_buf(), reason };
    Session::builder(&env)
        .map_err(|e| model_err(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| model_err(e.to_string()))?
        .with_intra_threads(intra_threads.max(1))
        .map_err(|e| model_err(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| model_err(e.to_string()))?
        // Idle intra-op workers sleep instead of spinning: a spinning pool burns the cores that
        // concurrent requests need (BENCHMARKS.md: with 2 threads and spinning, c=1 p50 went from
        // 557 to 1698 ms on a busy machine; without spinning, 341 to 230 ms on a quiet one).
        .with_intra_op_spinning(false)
        .map_err(|e| model_err(e.to_string()))?
        // Denormals as zero on the intra-op workers (the calling thread: see `denormals`).
        .with_flush_to_zero()
        .map_err(|e| model_err(e.to_string()))?
        .commit_from_file(model_file)
        .map_err(|e| model_err(e.to_string()))
}
