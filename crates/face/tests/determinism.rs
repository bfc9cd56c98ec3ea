//! The same input gives the same output, also across processes: the test re-runs itself in several
//! child processes (each with its own hash-map seeds, thread ids and allocator layout) and demands
//! that every child prints the same detections and bit-identical embeddings. It skips (with a
//! message) when the models or the shared data are absent.

use std::path::PathBuf;

use idverify_face::{FaceEngine, FaceEngineConfig};
use idverify_testkit::processes::{assert_same_in_every_process, emit, fnv, is_child};
use idverify_testkit::{models_dir, shared_data};

/// Embedding is slow in a debug build: the first image (by name) of this many people (by name).
const PEOPLE: usize = 12;

fn float_bits_hash(values: impl IntoIterator<Item = f32>) -> u64 {
    fnv(values.into_iter().flat_map(|v| v.to_bits().to_le_bytes()))
}

fn sample_images(dev: &std::path::Path) -> Vec<PathBuf> {
    let mut people: Vec<PathBuf> = std::fs::read_dir(dev)
        .expect("faces/dev lists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    people
        .iter()
        .take(PEOPLE)
        .filter_map(|person| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(person)
                .expect("person folder lists")
                .map(|e| e.expect("entry").path())
                .collect();
            files.sort();
            files.into_iter().next()
        })
        .collect()
}

#[test]
fn detection_and_embedding_are_the_same_in_every_process() {
    let dev = shared_data().join("faces/dev");
    if !dev.is_dir() {
        eprintln!("SKIP: shared data not found at {}", dev.display());
        return;
    }
    let models_dir = models_dir();
    if !models_dir.join(idverify_face::RECOGNIZER_FILE).is_file() {
        eprintln!("SKIP: models not found in {}", models_dir.display());
        return;
    }
    if !is_child() {
        return assert_same_in_every_process("detection_and_embedding_are_the_same_in_every_process");
    }
    let cfg = FaceEngineConfig {
        models_dir,
        intra_threads: 1,
        sessions: 1,
        target_fmr: 0.001,
        recognizers: idverify_face::Recognizers::Dlib,
    };
    let engine = FaceEngine::load(&cfg).expect("engine loads");
    for path in sample_images(&dev) {
        let image = image::open(&path).expect("image decodes").to_rgb8();
        let faces = engine.detect(&image).expect("detection runs");
        let geometry = faces.iter().flat_map(|f| {
            [f.bbox.x, f.bbox.y, f.bbox.width, f.bbox.height, f.score]
                .into_iter()
                .chain(f.landmarks.iter().flatten().copied())
        });
        let embedding = match faces.first() {
            Some(face) => {
                format!("{:016x}", float_bits_hash(engine.embed(&image, face).expect("embedding runs").0))
            }
            None => "-".to_owned(),
        };
        let name = path.strip_prefix(&dev).unwrap_or(&path).display().to_string();
        emit(format!(
            "{name}\tfaces={}\tgeometry={:016x}\tembedding={embedding}",
            faces.len(),
            float_bits_hash(geometry)
        ));
    }
}
