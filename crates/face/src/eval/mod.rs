//! `idverify eval faces`: verification figures on a pairs file (`img_a,img_b,same[,fold,...]`,
//! paths relative to the csv).
//!
//! Face choice per image: YuNet at its normal threshold; if nothing is found (LFW's 250×250 tight
//! crops sometimes cut the face at the border), the image is padded by 25 % on every side with
//! black and detected again. Among faces at least a quarter the area of the largest, the one
//! nearest the image centre is used (LFW labels the centred person).
//! Pairs with a detection failure count as non-matches (distance +∞ for ROC figures).
//!
//! Document style: each pair's first image is cut around its face, pasted small (face 75-100 px
//! wide) into the portrait area of a synthetic ID card inside a 1280×960 "phone photo",
//! JPEG-compressed (quality 70), decoded, and found again with `find_portrait`.
//!
//! All pairs (`--impostors all`): an image's identity is its folder (`Name/Name_0001.jpg`); every
//! cross-identity pair of the file's images is an impostor pair and every same-identity pair within
//! a fold (LFW's folds are identity-disjoint) a genuine one. In document style the probes are the
//! document renders of the first images and the gallery the plain second images. Each image is
//! embedded once; the pairs are scored from the embeddings held in memory.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageDecoder, ImageReader, Rgb, RgbImage};
use serde::Serialize;

use crate::{Embedding, Face, FaceEngine, FaceError};

mod all_pairs;
mod cache;
mod images;
mod metrics;

pub use self::all_pairs::*;
pub use self::images::*;
pub use self::metrics::*;

#[derive(Clone, Debug)]
pub struct ScoredPair {
    pub img_a: String,
    pub img_b: String,
    pub same: bool,
    pub fold: Option<i64>,
    /// None when a face was not found in either image.
    pub distance: Option<f32>,
    /// SFace cosine, when the engine has SFace loaded and both faces were found.
    pub second_cosine: Option<f32>,
}

#[derive(Clone, Debug)]
pub struct ScoredPairs {
    pub pairs: Vec<ScoredPair>,
    pub images: usize,
    /// Image keys (file names; `doc:` prefix for document-style renders) where no face was found.
    pub detect_failures: Vec<String>,
    /// detect + align + embed time per image, milliseconds.
    pub ms_per_image: Vec<f64>,
    /// Embedding per image key (as in `detect_failures`), for the all-pairs figures.
    pub embeddings: HashMap<String, Embedding>,
    /// SFace embedding per image key (empty without SFace).
    pub second: HashMap<String, Embedding>,
    /// CPU milliseconds per SFace alignment + embedding (the calling thread's time).
    pub second_cpu_ms: Vec<f64>,
    pub document_style: bool,
}

/// Options of `idverify eval faces`.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    pub document_style: bool,
    /// Also score every cross-identity pair of the file's images (see the module doc).
    pub all_impostors: bool,
    /// Write DET curves (SVG) into this folder (needs SFace loaded).
    pub plot_dir: Option<PathBuf>,
    /// Read embeddings from this file and write them back (see `cache.rs`).
    pub embedding_cache: Option<PathBuf>,
    /// Relabel the file's pairs listed here (`img_a,img_b,same[,note]`) before any figure: the
    /// data set's known label errors. Identities for `--impostors all` stay the folders.
    pub errata: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoldFigure {
    pub folds: usize,
    pub mean_accuracy: f64,
    pub std_accuracy: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalSummary {
    pub pairs: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    pub images: usize,
    pub detect_fail_images: usize,
    pub detect_fail_pairs: usize,
    pub threshold_distance: f32,
    /// Percentages.
    pub accuracy: f64,
    pub fmr_at_threshold: f64,
    pub fnmr_at_threshold: f64,
    /// Impostor pairs accepted and genuine pairs rejected at the threshold (counts).
    pub impostors_accepted: usize,
    pub genuine_rejected: usize,
    pub best_accuracy: f64,
    pub best_threshold: f64,
    pub tar_at_fmr_1: f64,
    pub tar_at_fmr_0_1: f64,
    pub eer: f64,
    pub auc: f64,
    pub median_ms_per_image: f64,
    pub folds: Option<FoldFigure>,
    /// With `--impostors all`.
    pub all_pairs: Option<AllPairsSummary>,
    /// The wrong decisions at the threshold, listed when there are at most [`MAX_LISTED_ERRORS`].
    pub errors_at_threshold: Vec<PairError>,
}

/// Wrong decisions listed in the report up to this many.
pub const MAX_LISTED_ERRORS: usize = 20;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairError {
    pub img_a: String,
    pub img_b: String,
    pub same: bool,
    pub distance: Option<f32>,
}

/// FNMR where the all-pairs impostor set gives a false-match rate.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FnmrAtFmr {
    pub fmr: f64,
    /// None when the set has too few impostors for this rate.
    pub threshold: Option<f64>,
    pub impostors_accepted: usize,
    /// Percentages: on every same-identity pair, and on the file's genuine pairs.
    pub fnmr_all: f64,
    pub fnmr_pairs: f64,
}

/// One held-out fold: threshold from every cross-identity pair of the other folds' images.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOutFold {
    pub fold: i64,
    pub threshold: f64,
    pub train_impostors: usize,
    pub train_accepted: usize,
    /// The held-out fold's own pairs from the file.
    pub pairs: usize,
    pub correct: usize,
    pub impostor_pairs: usize,
    pub false_matches: usize,
    pub genuine_pairs: usize,
    pub false_non_matches: usize,
    /// Every cross-identity pair of the held-out fold's images.
    pub cross_impostors: usize,
    pub cross_false_matches: usize,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOutFolds {
    pub target_fmr: f64,
    pub folds: Vec<HeldOutFold>,
    /// Percentages.
    pub mean_accuracy: f64,
    pub std_accuracy: f64,
    pub fmr_pairs: f64,
    pub fmr_cross: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllPairsSummary {
    pub images: usize,
    pub identities: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Same-identity pairs across folds (neither genuine nor impostor; 0 when folds are disjoint).
    pub skipped_cross_fold: usize,
    pub impostors_accepted: usize,
    pub genuine_rejected: usize,
    /// Percentages at the configured threshold.
    pub fmr_at_threshold: f64,
    pub fnmr_at_threshold: f64,
    pub at_fmr: Vec<FnmrAtFmr>,
    pub held_out: Option<HeldOutFolds>,
}

/// Runs the evaluation and prints the report; the last line is
/// `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=… fmr_at_threshold=…` (percentages; detect_fail
/// counts images).
pub fn run(
    engine: &FaceEngine,
    pairs_csv: &Path,
    opts: EvalOptions,
    out: &mut dyn Write,
) -> Result<EvalSummary, FaceError> {
    let mut scored =
        score_pairs_cached(engine, pairs_csv, opts.document_style, opts.embedding_cache.as_deref(), out)?;
    if let Some(errata) = &opts.errata {
        let relabelled = apply_errata(&mut scored, errata)?;
        writeln!(
            out,
            "errata: {relabelled} pairs relabelled as {} says (without --errata: the file's own labels)",
            errata.display()
        )
        .map_err(|e| FaceError::Io(e.to_string()))?;
    }
    let info = engine.model_info();
    let mut s = summarize(&scored, info.threshold_distance);
    let all = if opts.all_impostors { Some(all_pair_scores(&scored)?) } else { None };
    if let Some(all) = &all {
        s.all_pairs = Some(all_pairs_summary(&scored, all, info.threshold_distance, info.target_fmr));
    }
    write_report_body(&s, pairs_csv, opts.document_style, &info, out)?;
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    let cascade = crate::eval_cascade::report(engine, &scored, all.as_ref(), info.target_fmr)?;
    if let Some(c) = &cascade {
        crate::eval_cascade::write_cascade(c, info.target_fmr, out)?;
    }
    if let Some(dir) = &opts.plot_dir {
        let mut name = data_set_name(pairs_csv);
        if opts.document_style {
            name.push_str("-document");
        }
        match crate::eval_cascade::plot(engine, &scored, all.as_ref(), dir, &name)? {
            Some(path) => writeln!(out, "DET plot: {}", path.display()),
            None => writeln!(out, "no DET plot: SFace is not loaded (face_recognizers = \"dlib\")"),
        }
        .map_err(io)?;
    }
    // With SFace the last line speaks for the configured recognizers: their accuracy and FMR at
    // the threshold; TAR and EER from the fused score's curve.
    if let Some(c) = cascade.filter(|c| c.mode != crate::Recognizers::Dlib) {
        s.accuracy = c.configured.accuracy();
        s.fmr_at_threshold = c.configured.fmr();
        let mut sorted = c.fused_impostor.clone();
        sorted.sort_by(f64::total_cmp);
        s.tar_at_fmr_0_1 = 100.0 * tar_at_fmr(&c.fused_genuine, &sorted, 0.001);
        s.eer = 100.0 * eer(&c.fused_genuine, &c.fused_impostor);
    }
    write_last_line(&s, out)?;
    Ok(s)
}

/// Sets the label of every pair the errata file lists (in either order); an errata row that
/// names no pair of the file is an error, so a stale errata file cannot pass unnoticed.
fn apply_errata(scored: &mut ScoredPairs, errata: &Path) -> Result<usize, FaceError> {
    let mut relabelled = 0;
    for row in read_pairs(errata)? {
        let listed = |p: &ScoredPair| {
            (p.img_a == row.img_a && p.img_b == row.img_b) || (p.img_a == row.img_b && p.img_b == row.img_a)
        };
        let mut found = false;
        for pair in scored.pairs.iter_mut().filter(|p| listed(p)) {
            found = true;
            relabelled += usize::from(pair.same != row.same);
            pair.same = row.same;
        }
        if !found {
            return Err(FaceError::Data(format!(
                "{}: the pair {} / {} is not in the pairs file",
                errata.display(),
                row.img_a,
                row.img_b
            )));
        }
    }
    Ok(relabelled)
}

/// `lfw/dev/pairs.csv` -> `lfw-dev`.
fn data_set_name(pairs_csv: &Path) -> String {
    let mut dirs: Vec<String> = pairs_csv
        .parent()
        .map(|p| p.components().rev().take(2).map(|c| c.as_os_str().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    dirs.reverse();
    dirs.join("-")
}

/// Prints a summary; the last line is `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=…
/// fmr_at_threshold=…` (the file's impostor pairs, percent).
pub fn write_report(
    s: &EvalSummary,
    pairs_csv: &Path,
    document_style: bool,
    info: &crate::ModelInfo,
    out: &mut dyn Write,
) -> Result<(), FaceError> {
    write_report_body(s, pairs_csv, document_style, info, out)?;
    write_last_line(s, out)
}

/// `accuracy=… tar_at_fmr_0.1=… eer=… detect_fail=… fmr_at_threshold=…`
fn write_last_line(s: &EvalSummary, out: &mut dyn Write) -> Result<(), FaceError> {
    writeln!(
        out,
        "accuracy={:.2} tar_at_fmr_0.1={:.2} eer={:.2} detect_fail={} fmr_at_threshold={:.3}",
        s.accuracy, s.tar_at_fmr_0_1, s.eer, s.detect_fail_images, s.fmr_at_threshold
    )
    .map_err(|e| FaceError::Io(e.to_string()))
}

/// The report without its last line (dlib's figures).
fn write_report_body(
    s: &EvalSummary,
    pairs_csv: &Path,
    document_style: bool,
    info: &crate::ModelInfo,
    out: &mut dyn Write,
) -> Result<(), FaceError> {
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    writeln!(out, "pairs file: {} (document style: {document_style})", pairs_csv.display()).map_err(io)?;
    writeln!(out, "pairs: {} ({} genuine, {} impostor)", s.pairs, s.genuine_pairs, s.impostor_pairs)
        .map_err(io)?;
    writeln!(
        out,
        "detection failures: {} of {} images ({:.2} %), {} pairs affected",
        s.detect_fail_images,
        s.images,
        100.0 * s.detect_fail_images as f64 / s.images.max(1) as f64,
        s.detect_fail_pairs
    )
    .map_err(io)?;
    writeln!(
        out,
        "configured dlib threshold: distance {:.4} (target FMR {}, calibration {})",
        s.threshold_distance, info.target_fmr, info.calibration
    )
    .map_err(io)?;
    writeln!(
        out,
        "accuracy at threshold: {:.2} % (FMR {:.2} %, FNMR {:.2} %)",
        s.accuracy, s.fmr_at_threshold, s.fnmr_at_threshold
    )
    .map_err(io)?;
    writeln!(
        out,
        "realised at the configured threshold: FMR {:.3} % ({} of {} impostor pairs; target {:.3} %), FNMR {:.2} % ({} of {} genuine pairs)",
        s.fmr_at_threshold,
        s.impostors_accepted,
        s.impostor_pairs,
        100.0 * info.target_fmr,
        s.fnmr_at_threshold,
        s.genuine_rejected,
        s.genuine_pairs
    )
    .map_err(io)?;
    for e in &s.errors_at_threshold {
        let what = if e.same { "false non-match" } else { "false match" };
        let d = e.distance.map(|d| format!("{d:.4}")).unwrap_or_else(|| "no face".into());
        writeln!(out, "  {what}: {} {} distance {d}", e.img_a, e.img_b).map_err(io)?;
    }
    writeln!(out, "best accuracy: {:.2} % at distance {:.4}", s.best_accuracy, s.best_threshold)
        .map_err(io)?;
    writeln!(out, "TAR at FMR 1 %: {:.2} %; TAR at FMR 0.1 %: {:.2} %", s.tar_at_fmr_1, s.tar_at_fmr_0_1)
        .map_err(io)?;
    writeln!(out, "EER: {:.2} %; ROC AUC: {:.5}", s.eer, s.auc).map_err(io)?;
    writeln!(out, "median detect+align+embed: {:.1} ms per image", s.median_ms_per_image).map_err(io)?;
    if let Some(f) = &s.folds {
        writeln!(
            out,
            "{}-fold accuracy (threshold from the other folds): {:.2} ± {:.2} %",
            f.folds, f.mean_accuracy, f.std_accuracy
        )
        .map_err(io)?;
    }
    if let Some(a) = &s.all_pairs {
        write_all_pairs(a, info, out)?;
    }
    Ok(())
}

fn write_all_pairs(
    a: &AllPairsSummary,
    info: &crate::ModelInfo,
    out: &mut dyn Write,
) -> Result<(), FaceError> {
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    writeln!(
        out,
        "all pairs of the file's images: {} images with a face, {} identities, {} genuine (same identity{}), {} impostor (cross identity) pairs",
        a.images,
        a.identities,
        a.genuine_pairs,
        if a.skipped_cross_fold > 0 {
            format!(", same fold; {} cross-fold same-identity pairs left out", a.skipped_cross_fold)
        } else {
            String::new()
        },
        a.impostor_pairs
    )
    .map_err(io)?;
    writeln!(
        out,
        "  at the configured threshold {:.4}: FMR {:.4} % ({} of {}; target {:.4} %, ratio {:.2}), FNMR {:.2} % ({} of {})",
        info.threshold_distance,
        a.fmr_at_threshold,
        a.impostors_accepted,
        a.impostor_pairs,
        100.0 * info.target_fmr,
        a.fmr_at_threshold / (100.0 * info.target_fmr),
        a.fnmr_at_threshold,
        a.genuine_rejected,
        a.genuine_pairs
    )
    .map_err(io)?;
    for p in &a.at_fmr {
        match p.threshold {
            Some(t) => writeln!(
                out,
                "  FMR {:e}: distance {:.4} ({} impostors at or below), FNMR {:.2} % on all same-identity pairs, {:.2} % on the file's genuine pairs",
                p.fmr, t, p.impostors_accepted, p.fnmr_all, p.fnmr_pairs
            ),
            None => writeln!(out, "  FMR {:e}: too few impostor pairs", p.fmr),
        }
        .map_err(io)?;
    }
    if let Some(h) = &a.held_out {
        writeln!(
            out,
            "{}-fold at target FMR {} (threshold from every cross-identity pair of the other folds' images):",
            h.folds.len(),
            h.target_fmr
        )
        .map_err(io)?;
        for f in &h.folds {
            writeln!(
                out,
                "  fold {}: distance {:.4} ({} of {} training impostors at or below); held-out pairs {:.2} % correct, false matches {}/{}, false non-matches {}/{}; held-out cross-identity FMR {:.4} % ({}/{})",
                f.fold,
                f.threshold,
                f.train_accepted,
                f.train_impostors,
                pct(f.correct, f.pairs),
                f.false_matches,
                f.impostor_pairs,
                f.false_non_matches,
                f.genuine_pairs,
                pct(f.cross_false_matches, f.cross_impostors),
                f.cross_false_matches,
                f.cross_impostors
            )
            .map_err(io)?;
        }
        writeln!(
            out,
            "  held-out accuracy {:.2} ± {:.2} %; realised FMR {:.3} % on the held-out pairs, {:.4} % on the held-out folds' cross-identity pairs (target {:.3} %)",
            h.mean_accuracy,
            h.std_accuracy,
            h.fmr_pairs,
            h.fmr_cross,
            100.0 * h.target_fmr
        )
        .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(dists: &[(Option<f32>, bool, i64)]) -> ScoredPairs {
        ScoredPairs {
            pairs: dists
                .iter()
                .map(|&(d, same, fold)| ScoredPair {
                    img_a: "a".into(),
                    img_b: "b".into(),
                    same,
                    fold: Some(fold),
                    distance: d,
                    second_cosine: None,
                })
                .collect(),
            images: 4,
            detect_failures: vec![],
            ms_per_image: vec![1.0, 3.0, 2.0],
            embeddings: HashMap::new(),
            second: HashMap::new(),
            second_cpu_ms: Vec::new(),
            document_style: false,
        }
    }

    #[test]
    fn errata_relabel_the_pairs_they_list_in_either_order_and_refuse_unknown_pairs() {
        let pair = |a: &str, b: &str, same| ScoredPair {
            img_a: a.into(),
            img_b: b.into(),
            same,
            fold: Some(1),
            distance: Some(0.5),
            second_cosine: None,
        };
        let mut s = scored(&[]);
        s.pairs = vec![pair("x/x_1.jpg", "x/x_2.jpg", true), pair("y/y_1.jpg", "z/z_1.jpg", false)];
        let dir = tempfile::tempdir().unwrap();
        let errata = dir.path().join("errata.csv");
        std::fs::write(&errata, "img_a,img_b,same,note\nx/x_2.jpg,x/x_1.jpg,0,two people\n").unwrap();
        assert_eq!(apply_errata(&mut s, &errata).unwrap(), 1);
        assert!(!s.pairs[0].same && !s.pairs[1].same);
        std::fs::write(&errata, "img_a,img_b,same,note\nq/q_1.jpg,x/x_1.jpg,0,stale\n").unwrap();
        assert!(apply_errata(&mut s, &errata).is_err());
    }

    #[test]
    fn summary_figures_on_known_distances() {
        let s = summarize(
            &scored(&[
                (Some(0.3), true, 0),
                (Some(0.5), true, 1),
                (Some(0.7), true, 0),
                (None, true, 1),
                (Some(0.6), false, 0),
                (Some(0.8), false, 1),
                (Some(0.9), false, 0),
                (Some(1.0), false, 1),
            ]),
            0.55,
        );
        // At 0.55: genuine 0.3, 0.5 accepted; all impostors rejected -> 6/8.
        assert!((s.accuracy - 75.0).abs() < 1e-9);
        assert!((s.best_accuracy - 75.0).abs() < 1e-9);
        assert_eq!(s.detect_fail_pairs, 1);
        // 4 genuine vs 4 impostor: 0.3,0.5 beat all 4; 0.7 beats 3; inf beats none -> 11/16.
        assert!((s.auc - 11.0 / 16.0).abs() < 1e-12);
        assert!((s.median_ms_per_image - 2.0).abs() < 1e-12);
        // FMR 1 % with 4 impostors allows none: genuine strictly below 0.6 -> 2/4.
        assert!((s.tar_at_fmr_1 - 50.0).abs() < 1e-9);
        assert_eq!(s.folds.as_ref().unwrap().folds, 2);
    }

    #[test]
    fn all_pairs_by_identity_and_fold() {
        let pair = |a: &str, b: &str, same, fold| ScoredPair {
            img_a: a.into(),
            img_b: b.into(),
            same,
            fold: Some(fold),
            distance: None,
            second_cosine: None,
        };
        let mut s = scored(&[]);
        s.pairs =
            vec![pair("A/1", "A/2", true, 0), pair("A/1", "B/1", false, 0), pair("C/1", "D/1", false, 1)];
        for (key, v) in [("A/1", 0.0f32), ("A/2", 0.1), ("B/1", 1.0), ("C/1", 3.0), ("D/1", 3.5)] {
            s.embeddings.insert(key.into(), Embedding(vec![v]));
        }
        let all = all_pair_scores(&s).unwrap();
        assert_eq!((all.images, all.identities, all.skipped_cross_fold), (5, 4, 0));
        assert_eq!(all.genuine_all().len(), 1);
        assert_eq!(all.impostor_all().len(), 9);
        let mut held_out_0 = all.impostor_without(1);
        held_out_0.sort_by(f32::total_cmp);
        assert!((held_out_0[0] - 0.9).abs() < 1e-6 && (held_out_0[1] - 1.0).abs() < 1e-6);
        assert_eq!(all.impostor_without(0), vec![0.5]);
        // 9 impostors, FMR 0.2 allows 1: halfway between 0.5 and 0.9.
        let (t, k) = threshold_at_fmr(&all.impostor_all(), 0.2).unwrap();
        assert!((t - 0.7).abs() < 1e-6 && k == 1);
        assert!(threshold_at_fmr(&all.impostor_all(), 0.1).is_none());
        let sum = all_pairs_summary(&s, &all, 0.95, 0.2);
        // At 0.95: impostors 0.5 and 0.9 accepted.
        assert_eq!((sum.impostors_accepted, sum.genuine_rejected), (2, 0));
        assert!(sum.held_out.is_none(), "one training impostor set is too small for FMR 0.2");
        assert!(
            all_pair_scores(&ScoredPairs {
                embeddings: [("x.jpg".to_string(), Embedding(vec![0.0]))].into(),
                ..s
            })
            .is_err()
        );
    }

    #[test]
    fn eer_of_separable_sets_is_zero() {
        assert_eq!(eer(&[0.1, 0.2], &[0.5, 0.6]), 0.0);
        assert!((eer(&[0.1, 0.6], &[0.5, 0.9]) - 0.5).abs() < 1e-12);
    }
}
