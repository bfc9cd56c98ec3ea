//! Runs the evaluation functions without the main CLI:
//! `cargo run -p idverify-document --example doc_eval -- mrz|pdf417|aamva MANIFEST [MODELS_DIR]`.

use std::path::PathBuf;

use idverify_document::{DocumentEngine, DocumentEngineConfig, eval};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: doc_eval mrz|pdf417|aamva MANIFEST [MODELS_DIR]".into());
    }
    let manifest = PathBuf::from(&args[2]);
    let mut out = std::io::stdout();
    match args[1].as_str() {
        "mrz" => {
            let models_dir = args.get(3).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("models"));
            let engine = DocumentEngine::load(&DocumentEngineConfig {
                models_dir,
                intra_threads: 1,
                sessions: 1,
                cross_check_passports: false,
            })?;
            eval::mrz(&engine, &manifest, &mut out)?;
        }
        "pdf417" => {
            eval::pdf417(&manifest, &mut out)?;
        }
        "aamva" => {
            eval::aamva(&manifest, &mut out)?;
        }
        other => return Err(format!("unknown evaluation {other}").into()),
    }
    Ok(())
}
