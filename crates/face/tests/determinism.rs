//! The same input gives the same output, also across processes: the test re-runs itself in several
//! child processes (each with its own hash-map seeds, thread ids and allocator layout) and demands
//! that every child prints the same detections and bit-identical embeddings. It skips (with a
//! message) when the models or the shared data are absent.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use idverify_face::{FaceEngine, FaceEngineConfig};

/// Set in the child processes: the test then prints its results instead of spawning children.
const CHILD_ENV: &str = "IDVERIFY_DETERMINISM_CHILD";
/// Prefix of the result lines a child prints (the test harness prints lines of its own).
const LINE_PREFIX: &str = "determinism\t";
const PROCESSES: usize = 3;
/// Embedding is slow in a debug build: the first image (by name) of this many people (by name).
const PEOPLE: usize = 12;

/// From the package root at run time (with a shared target dir, the compile-time one may be stale).
fn workspace_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../..")
}

/// FNV-1a: a hash that, unlike std's, is the same in every process.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn float_bits_hash(values: impl IntoIterator<Item = f32>) -> u64 {
    fnv(values.into_iter().flat_map(|v| v.to_bits().to_le_bytes()))
}

/// Runs test `name` of this binary in [`PROCESSES`] child processes at once and asserts that all
/// print the same, non-empty result lines.
fn assert_same_in_every_process(name: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([name, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("child process starts")
        })
        .collect();
    let outputs: Vec<Vec<String>> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("child process runs");
            assert!(out.status.success(), "child process of {name} failed: {}", out.status);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                // With --nocapture the harness's "test NAME ... " can share a line with the first result.
                .filter_map(|l| l.split_once(LINE_PREFIX).map(|(_, result)| result))
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert!(!outputs[0].is_empty(), "the child processes of {name} printed no results");
    for (i, other) in outputs.iter().enumerate().skip(1) {
        assert_eq!(&outputs[0], other, "{name}: process {i} differs from process 0");
    }
    eprintln!("{name}: {} result lines identical in {PROCESSES} processes", outputs[0].len());
}

/// One image per person in faces/dev, sorted, so every process reads the same files.
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
    let dev = workspace_root().join("../shared/data/faces/dev");
    if !dev.is_dir() {
        eprintln!("SKIP: shared data not found at {}", dev.display());
        return;
    }
    let models_dir = std::env::var_os("IDVERIFY_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models"));
    if !models_dir.join(idverify_face::RECOGNIZER_FILE).is_file() {
        eprintln!("SKIP: models not found in {}", models_dir.display());
        return;
    }
    if std::env::var_os(CHILD_ENV).is_none() {
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
        println!(
            "{LINE_PREFIX}{name}\tfaces={}\tgeometry={:016x}\tembedding={embedding}",
            faces.len(),
            float_bits_hash(geometry)
        );
    }
}
