//! An embedding cache for `idverify eval faces --embedding-cache FILE`: each image's dlib and
//! SFace embeddings (and its timings) by image key, so that a second evaluation of the same pairs
//! file skips the detection and embedding (several CPU minutes on lfw/dev). The file names the
//! models that made it; a file of other models is ignored and rewritten. It holds embeddings of
//! public evaluation images only, never of service requests.

use super::*;
use serde::Deserialize;

#[derive(Serialize, Deserialize)]
struct CachedImage {
    dlib: Option<Vec<f32>>,
    second: Option<Vec<f32>>,
    ms: f64,
    #[serde(rename = "secondCpuMs")]
    second_cpu_ms: Option<f64>,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    models: String,
    images: HashMap<String, CachedImage>,
}

/// Names the models whose embeddings a cache holds.
fn models_key(engine: &FaceEngine) -> String {
    let second = if engine.has_second() { crate::sface::SFACE_NAME } else { "-" };
    format!("{}+{}+{}", crate::DETECTOR_NAME, crate::RECOGNIZER_NAME, second)
}

/// The cached results usable with `engine` (an entry without SFace is unusable when SFace is
/// loaded); empty when the file is missing or was made by other models.
pub(crate) fn load(engine: &FaceEngine, path: &Path) -> HashMap<String, ImageResult> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    let Ok(file) = serde_json::from_str::<CacheFile>(&text) else { return HashMap::new() };
    if file.models != models_key(engine) {
        return HashMap::new();
    }
    file.images
        .into_iter()
        .filter(|(_, c)| c.dlib.is_none() || !engine.has_second() || c.second.is_some())
        .map(|(key, c)| {
            let r = ImageResult {
                dlib: c.dlib.map(Embedding),
                second: c.second.map(Embedding),
                ms: c.ms,
                second_cpu_ms: c.second_cpu_ms,
            };
            (key, r)
        })
        .collect()
}

/// Writes every result (cached ones included) to `path`.
pub(crate) fn store(
    engine: &FaceEngine,
    path: &Path,
    results: &HashMap<String, ImageResult>,
) -> Result<(), FaceError> {
    let images = results
        .iter()
        .map(|(key, r)| {
            let c = CachedImage {
                dlib: r.dlib.as_ref().map(|e| e.0.clone()),
                second: r.second.as_ref().map(|e| e.0.clone()),
                ms: r.ms,
                second_cpu_ms: r.second_cpu_ms,
            };
            (key.clone(), c)
        })
        .collect();
    let file = CacheFile { models: models_key(engine), images };
    let text = serde_json::to_string(&file).map_err(|e| FaceError::Data(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| FaceError::Io(format!("{}: {e}", path.display())))
}
