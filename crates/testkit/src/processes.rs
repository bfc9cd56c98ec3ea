//! Running one test in several processes at once and comparing what each prints: nondeterminism
//! that depends on per-process state (hash seeds, thread timing) shows up only across processes.
//!
//! A test calls [`assert_same_in_every_process`] with its own name when [`is_child`] is false; in
//! the children it does its work and prints each result with [`emit`].

use std::process::{Command, Stdio};

/// Set in the child processes.
const CHILD_ENV: &str = "IDVERIFY_DETERMINISM_CHILD";
/// Marks a result line in a child's output.
const LINE_PREFIX: &str = "determinism\t";
/// How many processes run the test at once.
const PROCESSES: usize = 3;

/// FNV-1a over `bytes`: a hash that, unlike std's, is the same in every process, for result lines.
pub fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Whether this process is one of the children.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Prints a result line in a child.
pub fn emit(line: String) {
    println!("{LINE_PREFIX}{line}");
}

/// Runs test `name` of this binary in [`PROCESSES`] child processes at once and asserts that all
/// print the same, non-empty result lines.
pub fn assert_same_in_every_process(name: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([name, "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
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
        let differing: Vec<String> = outputs[0]
            .iter()
            .zip(other)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("  process 0: {a}\n  process {i}: {b}"))
            .collect();
        assert!(
            differing.is_empty() && outputs[0].len() == other.len(),
            "{name}: process {i} differs from process 0 ({} vs {} lines):\n{}",
            other.len(),
            outputs[0].len(),
            differing.join("\n")
        );
    }
    eprintln!("{name}: {} result lines identical in {PROCESSES} processes", outputs[0].len());
}
