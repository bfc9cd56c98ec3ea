//! Synthetic card fronts for tests and benches: `scripts/synth_fronts.py` run with the models
//! venv's Python (numpy, Pillow; `make models` creates it), portraits from `../shared/data/lfw`.

use std::path::PathBuf;
use std::process::Command;

use crate::{script, shared_data};

/// The models venv's Python: `$IDVERIFY_CACHE_DIR/venv`, else `~/.cache/idverify/venv`.
pub fn venv_python() -> Option<PathBuf> {
    let cache = std::env::var_os("IDVERIFY_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/idverify")))?;
    let python = cache.join("venv/bin/python");
    python.is_file().then_some(python)
}

/// One manifest row of a generated set: the image and its printed fields by column name.
pub struct Front {
    pub image: PathBuf,
    pub columns: Vec<(String, String)>,
}

impl Front {
    /// A manifest column (`layout`, `surname`, `birth_date`, …); empty when not printed.
    pub fn get(&self, column: &str) -> &str {
        self.columns.iter().find(|(c, _)| c == column).map_or("", |(_, v)| v.as_str())
    }
}

/// Generates `count` seeded fronts (US, EU and ID card in turn) into a fresh folder, photographed
/// (perspective, glare, blur, JPEG) unless `clean`. `None`, with a message, when LFW or the venv
/// is absent.
pub fn generate(count: usize, clean: bool) -> Option<(tempfile::TempDir, Vec<Front>)> {
    generate_layouts(count, clean, "us,eu,id")
}

/// As [`generate`], with the layouts taken in turn from `layouts` (`us`, `eu`, `id`, `ca`,
/// comma-separated).
pub fn generate_layouts(count: usize, clean: bool, layouts: &str) -> Option<(tempfile::TempDir, Vec<Front>)> {
    let lfw = shared_data().join("lfw/dev");
    if !lfw.is_dir() {
        eprintln!("SKIP: {} not found", lfw.display());
        return None;
    }
    let Some(python) = venv_python() else {
        eprintln!("SKIP: the models venv (numpy, Pillow) is absent: run `make models`");
        return None;
    };
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut cmd = Command::new(python);
    cmd.arg(script("synth_fronts.py")).arg("--lfw").arg(&lfw).arg("--out").arg(dir.path());
    cmd.arg("--count").arg(count.to_string()).arg("--layouts").arg(layouts);
    if clean {
        cmd.arg("--clean");
    }
    let out = cmd.output().expect("run synth_fronts.py");
    assert!(out.status.success(), "synth_fronts.py: {}", String::from_utf8_lossy(&out.stderr));
    let mut reader = csv::Reader::from_path(dir.path().join("manifest.csv")).expect("manifest");
    let headers: Vec<String> = reader.headers().expect("header").iter().map(String::from).collect();
    let fronts = reader
        .records()
        .map(|r| {
            let r = r.expect("manifest row");
            let columns: Vec<(String, String)> =
                headers.iter().cloned().zip(r.iter().map(String::from)).collect();
            Front { image: dir.path().join(&columns[0].1), columns }
        })
        .collect();
    Some((dir, fronts))
}
