//! `idverify bench` with the real models, one timed call per stage. Skipped (with a message)
//! when the models are absent.

use std::process::Command;

#[test]
fn bench_ends_with_positive_figures_for_the_verify() {
    let models = idverify_testkit::models_dir();
    let needed = [
        idverify_document::DET_MODEL,
        idverify_document::REC_MODEL,
        idverify_face::DETECTOR_FILE,
        idverify_face::RECOGNIZER_FILE,
    ];
    if let Some(missing) = needed.iter().find(|m| !models.join(m).is_file()) {
        eprintln!("SKIP: {missing} not found in {}", models.display());
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_idverify"))
        .args(["bench", "--iterations", "1"])
        .env("IDVERIFY_MODELS_DIR", &models)
        .env_remove("IDVERIFY_CONFIG")
        .output()
        .expect("idverify runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("MLAS kernels"), "the machine is described:\n{stdout}");
    let last = stdout.lines().last().expect("some output");
    let figures: Vec<(&str, f64)> = last
        .split(' ')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("not key=value: {pair}"));
            (key, value.parse().unwrap_or_else(|_| panic!("not a number: {pair}")))
        })
        .collect();
    let keys: Vec<&str> = figures.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["cpu_ms_per_verify", "verifies_per_core_s", "scan_ms", "face_ms"], "{last}");
    for (key, value) in figures {
        assert!(value.is_finite() && value > 0.0, "{key}={value}");
    }
}
