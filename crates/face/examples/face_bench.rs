//! Times detect + align + embed on one image resized to about 1 MP, one intra-op thread:
//! `cargo run -p idverify-face --example face_bench -- IMAGE [ITERATIONS]`

use std::path::PathBuf;
use std::time::Instant;

use idverify_face::{FaceEngine, FaceEngineConfig, eval};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or("usage: face_bench IMAGE [ITERATIONS]")?;
    let iterations: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let models_dir = idverify_testkit::models_dir();
    let engine = FaceEngine::load(&FaceEngineConfig {
        models_dir,
        intra_threads: 1,
        sessions: 1,
        target_fmr: 0.001,
        recognizers: idverify_face::Recognizers::Dlib,
    })?;
    let original = eval::load_oriented_rgb(&PathBuf::from(path))?;
    let scale = (1_000_000.0 / (original.width() as f64 * original.height() as f64)).sqrt();
    let (w, h) = ((original.width() as f64 * scale) as u32, (original.height() as f64 * scale) as u32);
    let image = image::imageops::resize(&original, w, h, image::imageops::FilterType::Triangle);
    let mut letterbox_ms = Vec::new();
    for _ in 0..iterations {
        let start = Instant::now();
        std::hint::black_box(idverify_face::yunet::letterbox(&image));
        letterbox_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    // CPU time (not wall time) too: the machine may be shared.
    let cpu_before = process_cpu_ms();
    let mut detect_ms = Vec::new();
    let mut total_ms = Vec::new();
    for _ in 0..iterations {
        let start = Instant::now();
        let faces = engine.detect(&image)?;
        detect_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let face = faces.first().ok_or("no face")?;
        engine.embed(&image, face)?;
        total_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let cpu_per_image = (process_cpu_ms() - cpu_before) / iterations as f64;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{}x{} image: letterbox {:.1} ms, detect {:.1} ms, detect+align+embed {:.1} ms (median of {iterations}, min {:.1})",
        w,
        h,
        median(&mut letterbox_ms),
        median(&mut detect_ms),
        median(&mut total_ms),
        total_ms[0]
    );
    println!("process CPU time per detect+align+embed: {cpu_per_image:.1} ms");
    Ok(())
}

/// utime + stime of this process from /proc (Linux), milliseconds; 0 elsewhere.
fn process_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some(rest) = stat.rsplit(')').next() else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks, 100 Hz).
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    ticks * 10.0
}
