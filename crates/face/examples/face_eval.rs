//! Runs the face evaluation or calibration without the main binary:
//! `cargo run --release -p idverify-face --example face_eval -- eval PAIRS.csv [--document-style] [--impostors-all]`
//! `cargo run --release -p idverify-face --example face_eval -- calibrate PAIRS.csv OUT.json [--pairs-only]`
//! `cargo run -p idverify-face --example face_eval -- calibrate-eval PAIRS.csv OUT.json`
//! (calibrate: every pair of the file's images unless `--pairs-only`; calibrate-eval: every pair,
//! then the report at the new threshold with the all-pairs figures).
//! `cargo run -p idverify-face --example face_eval -- render-doc IMAGE OUT.png`
//! Models come from `IDVERIFY_MODELS_DIR` or `<workspace>/models`.

use std::path::PathBuf;

use idverify_face::{FaceEngine, FaceEngineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models_dir = idverify_testkit::models_dir();
    let cfg = FaceEngineConfig {
        models_dir,
        intra_threads: 1,
        sessions: 2,
        target_fmr: 0.001,
        recognizers: idverify_face::Recognizers::Dlib,
    };
    let engine = FaceEngine::load(&cfg)?;
    let mut out = std::io::stdout();
    match args.first().map(String::as_str) {
        Some("eval") if args.len() >= 2 => {
            let opts = idverify_face::eval::EvalOptions {
                document_style: args.iter().any(|a| a == "--document-style"),
                all_impostors: args.iter().any(|a| a == "--impostors-all"),
                plot_dir: None,
                embedding_cache: None,
                errata: None,
            };
            idverify_face::eval::run(&engine, &PathBuf::from(&args[1]), opts, &mut out)?;
        }
        Some("calibrate") if args.len() >= 3 => {
            let all = !args.iter().any(|a| a == "--pairs-only");
            let cal = idverify_face::calibration::fit(&engine, &PathBuf::from(&args[1]), all, &mut out)?;
            cal.write_json_file(&PathBuf::from(&args[2]))?;
        }
        Some("calibrate-eval") if args.len() == 3 => {
            // One scoring pass: fit the calibration, then report with its threshold.
            let pairs = PathBuf::from(&args[1]);
            let scored = idverify_face::eval::score_pairs(&engine, &pairs, false, &mut out)?;
            let cal = idverify_face::calibration::fit_scored(&scored, &pairs, true, &mut out)?;
            cal.write_json_file(&PathBuf::from(&args[2]))?;
            let mut info = engine.model_info();
            info.calibration = cal.version.clone();
            info.threshold_distance = cal.threshold_for_fmr(info.target_fmr);
            info.threshold_confidence = cal.confidence(info.threshold_distance);
            let mut summary = idverify_face::eval::summarize(&scored, info.threshold_distance);
            let all = idverify_face::eval::all_pair_scores(&scored)?;
            summary.all_pairs = Some(idverify_face::eval::all_pairs_summary(
                &scored,
                &all,
                info.threshold_distance,
                info.target_fmr,
            ));
            idverify_face::eval::write_report(&summary, &pairs, false, &info, &mut out)?;
        }
        Some("quality") if args.len() >= 2 => {
            // Quality figures for each image given (file name and numbers only).
            for path in &args[1..] {
                let image = idverify_face::eval::load_oriented_rgb(&PathBuf::from(path))?;
                match idverify_face::eval::dataset_face(&engine, &image)? {
                    Some(face) => {
                        let q = engine.quality(&image, &face);
                        println!(
                            "{path}: width {:.0} sharp {:.1} bright {:.0} yaw {:.0} roll {:.0} {:?}",
                            q.face_width_px,
                            q.sharpness,
                            q.brightness,
                            q.yaw_degrees,
                            q.roll_degrees,
                            q.reasons
                        );
                    }
                    None => println!("{path}: no face"),
                }
            }
        }
        Some("fit-template") if args.len() == 3 => {
            // Mean of YuNet's 5 landmarks mapped into dlib's chip by dlib's own chip transforms
            // (a make_dlib_reference.py output, paths relative to the shared data dir in args[2]).
            let text = std::fs::read_to_string(&args[1])?;
            let fixture: serde_json::Value = serde_json::from_str(&text)?;
            let mut sum = [[0f64; 2]; 5];
            let mut n = 0usize;
            for chip in fixture["chips"].as_array().ok_or("no chips")? {
                let rel = chip["image"].as_str().ok_or("image")?;
                let step = chip["step"].as_f64().ok_or("step")?;
                let t: Vec<f64> =
                    chip["toChip"].as_array().ok_or("toChip")?.iter().filter_map(|v| v.as_f64()).collect();
                let to_chip = idverify_face::align::Similarity { a: t[0], b: t[1], tx: t[2], ty: t[3] };
                let image = idverify_face::eval::load_oriented_rgb(&PathBuf::from(&args[2]).join(rel))?;
                let Some(face) = idverify_face::eval::dataset_face(&engine, &image)? else { continue };
                let mapped = face.landmarks.map(|p| to_chip.apply([p[0] as f64 / step, p[1] as f64 / step]));
                // Skip faces where YuNet and dlib picked different people.
                let err: f64 = mapped
                    .iter()
                    .zip(idverify_face::align::TEMPLATE)
                    .map(|(m, t)| ((m[0] - t[0] as f64).powi(2) + (m[1] - t[1] as f64).powi(2)).sqrt())
                    .sum::<f64>()
                    / 5.0;
                if err > 15.0 {
                    continue;
                }
                for (s, m) in sum.iter_mut().zip(mapped) {
                    s[0] += m[0];
                    s[1] += m[1];
                }
                n += 1;
            }
            let mean = sum.map(|s| [s[0] / n as f64, s[1] / n as f64]);
            println!("faces used: {n}");
            println!("template: {mean:.3?}");
        }
        Some("render-doc") if args.len() == 3 => {
            // Writes the synthetic document built from IMAGE (for a visual check of eval's renders).
            let image = idverify_face::eval::load_oriented_rgb(&PathBuf::from(&args[1]))?;
            let face = idverify_face::eval::dataset_face(&engine, &image)?.ok_or("no face")?;
            let doc = idverify_face::eval::synthetic_document(&image, &face, 85.0, 1)?;
            let found = engine.find_portrait(&doc)?;
            println!("portrait: {:?}", found.map(|f| f.bbox));
            doc.save(&args[2])?;
        }
        _ => return Err("usage: face_eval eval PAIRS [--document-style] [--impostors-all] | calibrate PAIRS OUT.json [--pairs-only]".into()),
    }
    Ok(())
}
