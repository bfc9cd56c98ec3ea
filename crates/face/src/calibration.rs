//! Distance → confidence calibration and the FMR operating points.
//!
//! confidence = 100 · P(same | d) with P(same | d) = 1 / (1 + exp(-(intercept + slope · d))),
//! a logistic regression on the Euclidean distance with the two classes weighted equally (so the
//! prior is 0.5 however many pairs each class has). `slope` < 0, so confidence decreases with
//! distance.
//!
//! The shipped file is fitted on every pair of LFW dev's 3,811 images (`pairing: "all"`): genuine =
//! every same-identity pair within a fold (LFW's folds are identity-disjoint), impostor = every
//! cross-identity pair, about 7.3 million, each image embedded once. The FMR table holds, for a few
//! false-match rates, the largest distance threshold whose rate on the impostor pairs stays within
//! it (empirical where the set has at least one impostor per FMR step, else from a normal fit of
//! the impostor distances' lower tail), with `impostorsAccepted`, the impostor pairs at or below
//! the threshold that support it, and the FNMR on the genuine pairs. Any FMR in between is served
//! by linear interpolation in log10(FMR). A target FMR is supported down to the smallest table
//! rate that is empirical and backed by at least [`MIN_SUPPORT`] impostor pairs
//! ([`Calibration::min_supported_fmr`]); files without the support counts (older ones) count
//! ⌊fmr · impostorPairs⌋.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{FaceEngine, FaceError};

/// The calibration shipped with the crate.
pub const DEFAULT_JSON: &str = include_str!("../calibration.json");

/// FMRs written to the table.
pub const TABLE_FMRS: [f64; 8] = [1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1];

/// Impostor pairs at or below a threshold needed for its FMR to count as supported.
pub const MIN_SUPPORT: usize = 10;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FmrPoint {
    pub fmr: f64,
    pub distance: f64,
    /// "empirical" or "normal_tail"
    pub method: String,
    /// Impostor pairs of the calibration set at or below `distance` (of `impostorPairs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impostors_accepted: Option<usize>,
    /// False non-match rate of the calibration set's genuine pairs at `distance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fnmr: Option<f64>,
}

impl FmrPoint {
    /// Impostor pairs behind this point (⌊fmr · total⌋ for files without the count).
    pub fn support(&self, impostor_pairs: usize) -> usize {
        match (self.method.as_str(), self.impostors_accepted) {
            ("empirical", Some(k)) => k,
            ("empirical", None) => (self.fmr * impostor_pairs as f64).floor() as usize,
            _ => 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    pub version: String,
    pub recognizer: String,
    pub fitted_on: String,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    pub intercept: f64,
    pub slope: f64,
    pub impostor_mean: f64,
    pub impostor_std: f64,
    pub fmr_table: Vec<FmrPoint>,
    /// "all": every pair of the set's images (see the module doc); absent: the file's pairs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing: Option<String>,
    /// Images embedded, and those where no face was found (left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_fail_images: Option<usize>,
    /// dlib + SFace fusion and the cascade band (see `fusion`), fitted on the same pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<crate::fusion::Fusion>,
}

impl Calibration {
    pub fn shipped() -> Result<Calibration, FaceError> {
        Self::from_json(DEFAULT_JSON)
    }

    pub fn from_json(text: &str) -> Result<Calibration, FaceError> {
        let cal: Calibration = serde_json::from_str(text)
            .map_err(|e| FaceError::Calibration(format!("invalid calibration: {e}")))?;
        if cal.fmr_table.is_empty() || !(cal.slope < 0.0) {
            return Err(FaceError::Calibration("calibration needs an FMR table and a negative slope".into()));
        }
        Ok(cal)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn write_json_file(&self, path: &Path) -> Result<(), FaceError> {
        std::fs::write(path, self.to_json() + "\n")
            .map_err(|e| FaceError::Io(format!("{}: {e}", path.display())))
    }

    /// 100 · P(same | distance), monotonically decreasing in distance.
    pub fn confidence(&self, distance: f32) -> f32 {
        let z = self.intercept + self.slope * distance as f64;
        (100.0 / (1.0 + (-z).exp())) as f32
    }

    /// Smallest FMR of the table that the calibration set supports: empirical, with at least
    /// [`MIN_SUPPORT`] impostor pairs at or below its threshold.
    pub fn min_supported_fmr(&self) -> Option<f64> {
        self.fmr_table
            .iter()
            .filter(|p| p.support(self.impostor_pairs) >= MIN_SUPPORT)
            .map(|p| p.fmr)
            .min_by(f64::total_cmp)
    }

    /// Err (a sentence) when `fmr` is below what the calibration supports.
    pub fn check_target_fmr(&self, fmr: f64) -> Result<(), String> {
        let Some(min) = self.min_supported_fmr() else {
            return Err(format!(
                "calibration {} has no FMR backed by at least {MIN_SUPPORT} impostor pairs",
                self.version
            ));
        };
        // A relative tolerance lets a target equal to a table rate through despite rounding.
        if fmr < min * (1.0 - 1e-9) {
            return Err(format!(
                "{fmr} is below the smallest false-match rate the face calibration supports, {min:e} \
                 (calibration {}: {} impostor pairs; a rate needs at least {MIN_SUPPORT} of them at or \
                 below its threshold)",
                self.version, self.impostor_pairs
            ));
        }
        Ok(())
    }

    /// Distance threshold for a false-match rate, interpolated in log10(FMR), clamped to the table.
    pub fn threshold_for_fmr(&self, fmr: f64) -> f32 {
        let mut table = self.fmr_table.clone();
        table.sort_by(|a, b| a.fmr.total_cmp(&b.fmr));
        let first = &table[0];
        let last = &table[table.len() - 1];
        if !(fmr > first.fmr) {
            return first.distance as f32;
        }
        if fmr >= last.fmr {
            return last.distance as f32;
        }
        let x = fmr.log10();
        for w in table.windows(2) {
            let (lo, hi) = (&w[0], &w[1]);
            if fmr <= hi.fmr {
                let (x0, x1) = (lo.fmr.log10(), hi.fmr.log10());
                let t = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.0 };
                return (lo.distance + t * (hi.distance - lo.distance)) as f32;
            }
        }
        last.distance as f32
    }
}

/// Logistic regression of `same` on distance by Newton's method, the two classes weighted
/// equally (each sample by n / (2 · its class size), so balanced sets get weight 1); a tiny ridge
/// keeps it finite on separable data. Returns (intercept, slope).
pub fn fit_logistic(genuine: &[f64], impostor: &[f64]) -> (f64, f64) {
    let n = (genuine.len() + impostor.len()) as f64;
    let wg = n / (2.0 * genuine.len().max(1) as f64);
    let wi = n / (2.0 * impostor.len().max(1) as f64);
    let classes = [(genuine, 1.0, wg), (impostor, 0.0, wi)];
    let (mut b0, mut b1) = (0.0f64, 0.0f64);
    let ridge = 1e-6;
    for _ in 0..100 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, -ridge * b1, 0.0, 0.0, ridge);
        for (ds, y, weight) in classes {
            let (mut cg0, mut cg1, mut c00, mut c01, mut c11) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &d in ds {
                let p = 1.0 / (1.0 + (-(b0 + b1 * d)).exp());
                let w = p * (1.0 - p);
                cg0 += y - p;
                cg1 += (y - p) * d;
                c00 += w;
                c01 += w * d;
                c11 += w * d * d;
            }
            g0 += weight * cg0;
            g1 += weight * cg1;
            h00 += weight * c00;
            h01 += weight * c01;
            h11 += weight * c11;
        }
        let det = h00 * h11 - h01 * h01;
        if !(det.abs() > 1e-300) {
            break;
        }
        let step0 = (h11 * g0 - h01 * g1) / det;
        let step1 = (-h01 * g0 + h00 * g1) / det;
        b0 += step0;
        b1 += step1;
        if step0.abs() < 1e-12 && step1.abs() < 1e-12 {
            break;
        }
    }
    (b0, b1)
}

/// Inverse of the standard normal CDF (Acklam's rational approximation without refinement, |error| < 1e-4).
#[allow(clippy::excessive_precision)] // published coefficients, kept verbatim
pub fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549671039254718,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Largest threshold t with #{impostor d ≤ t} / n ≤ fmr, taken halfway to the next impostor
/// distance; None when the set has fewer than one impostor per `fmr` (then the normal tail is used).
pub fn empirical_threshold(sorted_impostor: &[f64], fmr: f64) -> Option<f64> {
    let n = sorted_impostor.len();
    let k = (fmr * n as f64).floor() as usize; // impostors allowed at or below the threshold
    if k == 0 || k >= n {
        return None;
    }
    Some((sorted_impostor[k - 1] + sorted_impostor[k]) / 2.0)
}

/// Builds a calibration from genuine and impostor distances.
pub fn fit_from_distances(
    genuine: &[f64],
    impostor: &[f64],
    version: &str,
    recognizer: &str,
    fitted_on: &str,
) -> Result<Calibration, FaceError> {
    if genuine.len() < 2 || impostor.len() < 2 {
        return Err(FaceError::Calibration("need at least 2 genuine and 2 impostor distances".into()));
    }
    let (intercept, slope) = fit_logistic(genuine, impostor);
    if !(slope < 0.0 && intercept.is_finite()) {
        return Err(FaceError::Calibration(format!("degenerate fit: slope {slope}")));
    }
    let mut sorted = impostor.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let std = (sorted.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let (distance_fmrs, methods): (Vec<f64>, Vec<&str>) = TABLE_FMRS
        .iter()
        .map(|&fmr| match empirical_threshold(&sorted, fmr) {
            Some(distance) => (distance, "empirical"),
            // Never above the smallest impostor distance seen.
            None => ((mean + std * normal_quantile(fmr)).min(sorted[0]), "normal_tail"),
        })
        .unzip();
    let fmr_table = TABLE_FMRS
        .iter()
        .zip(distance_fmrs.iter().zip(methods))
        .map(|(&fmr, (&distance, method))| FmrPoint {
            fmr,
            distance,
            method: method.into(),
            impostors_accepted: Some(sorted.partition_point(|&d| d <= distance)),
            fnmr: Some(genuine.iter().filter(|&&d| d > distance).count() as f64 / genuine.len() as f64),
        })
        .collect();
    Ok(Calibration {
        version: version.into(),
        recognizer: recognizer.into(),
        fitted_on: fitted_on.into(),
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        intercept,
        slope,
        impostor_mean: mean,
        impostor_std: std,
        fmr_table,
        pairing: None,
        images: None,
        detect_fail_images: None,
        fusion: None,
    })
}

/// Embeds every image of `pairs_csv` once with `engine` and fits a calibration: on every pair of
/// its images with `all_pairs` (see the module doc), else on the file's pairs. Pairs where a face
/// is not found are left out (reported on `out`).
pub fn fit(
    engine: &FaceEngine,
    pairs_csv: &Path,
    all_pairs: bool,
    out: &mut dyn Write,
) -> Result<Calibration, FaceError> {
    let scored = crate::eval::score_pairs(engine, pairs_csv, false, out)?;
    fit_scored(&scored, pairs_csv, all_pairs, out)
}

/// Appended to the version of a calibration that carries the fusion.
pub const FUSION_VERSION_SUFFIX: &str = "+sface2021dec-f1";

fn write_fusion(f: &crate::fusion::Fusion, out: &mut dyn Write) -> Result<(), FaceError> {
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    writeln!(
        out,
        "fusion with {}: impostor cosines dlib {:.4} ± {:.4}, SFace {:.4} ± {:.4}; logistic on the fused score {:.4} + {:.4}·s",
        f.second_recognizer,
        f.dlib_impostor_mean,
        f.dlib_impostor_std,
        f.second_impostor_mean,
        f.second_impostor_std,
        f.intercept,
        f.slope
    )
    .map_err(io)?;
    for p in &f.table {
        writeln!(
            out,
            "  fused fmr={:e} threshold {:.4} ({} impostors at or above), fnmr {:.2} %; band dlib distance {:.4}..{:.4} holds {:.2} % of genuine and {:.4} % of impostor pairs; changed decisions {}+{} (genuine+impostor), {}+{} outside the band",
            p.fmr,
            p.threshold,
            p.impostors_accepted,
            100.0 * p.fnmr,
            p.band_low,
            p.band_high,
            100.0 * p.in_band[0],
            100.0 * p.in_band[1],
            p.changed[0],
            p.changed[1],
            p.changed_outside_band[0],
            p.changed_outside_band[1]
        )
        .map_err(io)?;
    }
    Ok(())
}

/// Fits a calibration on already scored pairs (`pairs_csv` only names the data set).
pub fn fit_scored(
    scored: &crate::eval::ScoredPairs,
    pairs_csv: &Path,
    all_pairs: bool,
    out: &mut dyn Write,
) -> Result<Calibration, FaceError> {
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    let (genuine, impostor): (Vec<f64>, Vec<f64>) = if all_pairs {
        let all = crate::eval::all_pair_scores(scored)?;
        if all.skipped_cross_fold > 0 {
            writeln!(
                out,
                "warning: {} same-identity pairs span two folds (left out)",
                all.skipped_cross_fold
            )
            .map_err(io)?;
        }
        (
            all.genuine_all().into_iter().map(f64::from).collect(),
            all.impostor_all().into_iter().map(f64::from).collect(),
        )
    } else {
        let of = |same: bool| -> Vec<f64> {
            scored.pairs.iter().filter(|p| p.same == same).filter_map(|p| p.distance).map(f64::from).collect()
        };
        (of(true), of(false))
    };
    let skipped = scored.pairs.iter().filter(|p| p.distance.is_none()).count();
    // Names the data set by its last two folders, e.g. `lfw/dev/pairs.csv` -> "lfw-dev".
    let mut dirs: Vec<String> = pairs_csv
        .parent()
        .map(|p| p.components().rev().take(2).map(|c| c.as_os_str().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    dirs.reverse();
    let file = pairs_csv.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let all_tag = if all_pairs { "-all" } else { "" };
    let version = format!(
        "dlib-r1-{}-{}{all_tag}-{}g{}i",
        crate::PIPELINE_ID,
        dirs.join("-"),
        genuine.len(),
        impostor.len()
    );
    let fitted_on = format!("{}/{file}", dirs.join("/"));
    let mut cal = fit_from_distances(&genuine, &impostor, &version, crate::RECOGNIZER_NAME, &fitted_on)?;
    if all_pairs {
        cal.pairing = Some("all".into());
        cal.images = Some(scored.images);
        cal.detect_fail_images = Some(scored.detect_failures.len());
        if !scored.second.is_empty() {
            let all = crate::eval::all_pair_scores(scored)?;
            let known = |v: Vec<(f32, f32)>| v.into_iter().filter(|p| p.1.is_finite()).collect::<Vec<_>>();
            let fusion = crate::fusion::fit(
                &known(all.genuine_both(None)),
                &known(all.impostor_both(None)),
                &cal,
                crate::sface::SFACE_NAME,
            )?;
            write_fusion(&fusion, out)?;
            cal.version.push_str(FUSION_VERSION_SUFFIX);
            cal.fusion = Some(fusion);
        }
    }
    writeln!(out, "pairs skipped (no face): {skipped}").map_err(io)?;
    writeln!(
        out,
        "fitted on {} genuine and {} impostor pairs{}",
        cal.genuine_pairs,
        cal.impostor_pairs,
        if all_pairs { " (every pair of the file's images)" } else { "" }
    )
    .map_err(io)?;
    writeln!(out, "logistic: P(same|d) = 1/(1+exp(-({:.4} + {:.4}*d)))", cal.intercept, cal.slope)
        .map_err(io)?;
    for p in &cal.fmr_table {
        writeln!(
            out,
            "fmr={:e} distance={:.4} ({}) impostors at or below: {} of {}, fnmr {:.2} %",
            p.fmr,
            p.distance,
            p.method,
            p.support(cal.impostor_pairs),
            cal.impostor_pairs,
            100.0 * p.fnmr.unwrap_or(f64::NAN)
        )
        .map_err(io)?;
    }
    match cal.min_supported_fmr() {
        Some(f) => writeln!(out, "smallest supported target FMR: {f:e}"),
        None => writeln!(out, "no FMR has {MIN_SUPPORT} supporting impostor pairs"),
    }
    .map_err(io)?;
    Ok(cal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_calibration() -> Calibration {
        Calibration {
            version: "test".into(),
            recognizer: "fake".into(),
            fitted_on: "none".into(),
            genuine_pairs: 0,
            impostor_pairs: 0,
            intercept: 12.0,
            slope: -20.0,
            impostor_mean: 0.9,
            impostor_std: 0.08,
            fmr_table: vec![
                point(1e-3, 0.5, Some(2)),
                point(1e-2, 0.6, Some(20)),
                point(1e-1, 0.7, Some(200)),
            ],
            pairing: None,
            images: None,
            detect_fail_images: None,
            fusion: None,
        }
    }

    fn point(fmr: f64, distance: f64, impostors_accepted: Option<usize>) -> FmrPoint {
        FmrPoint { fmr, distance, method: "empirical".into(), impostors_accepted, fnmr: None }
    }

    #[test]
    fn target_fmr_needs_supporting_impostors() {
        let mut cal = fake_calibration();
        // 1e-3 rests on 2 impostors: not supported; 1e-2 on 20 is.
        assert_eq!(cal.min_supported_fmr(), Some(1e-2));
        assert!(cal.check_target_fmr(1e-2).is_ok());
        assert!(cal.check_target_fmr(0.05).is_ok());
        let err = cal.check_target_fmr(1e-3).unwrap_err();
        assert!(err.contains("below"), "{err}");
        // Older files without counts: floor(fmr · impostorPairs).
        cal.impostor_pairs = 1500;
        for p in &mut cal.fmr_table {
            p.impostors_accepted = None;
        }
        assert_eq!(cal.min_supported_fmr(), Some(1e-2));
        cal.impostor_pairs = 20_000;
        assert_eq!(cal.min_supported_fmr(), Some(1e-3));
        cal.fmr_table[0].method = "normal_tail".into();
        assert_eq!(cal.min_supported_fmr(), Some(1e-2));
    }

    #[test]
    fn older_files_without_counts_still_parse() {
        let text = r#"{"version":"v","recognizer":"r","fittedOn":"f","genuinePairs":1500,
            "impostorPairs":1500,"intercept":31.7,"slope":-75.5,"impostorMean":0.56,
            "impostorStd":0.06,"fmrTable":[{"fmr":0.01,"distance":0.43,"method":"empirical"}]}"#;
        let cal = Calibration::from_json(text).unwrap();
        assert_eq!(cal.fmr_table[0].impostors_accepted, None);
        assert_eq!(cal.min_supported_fmr(), Some(0.01));
        assert!(!cal.to_json().contains("impostorsAccepted"));
    }

    #[test]
    fn fit_records_support_and_weights_classes_equally() {
        let genuine: Vec<f64> = (0..100).map(|i| 0.2 + i as f64 * 0.002).collect();
        let impostor: Vec<f64> = (0..50_000).map(|i| 0.38 + i as f64 * 0.000_008).collect();
        let cal = fit_from_distances(&genuine, &impostor, "v", "r", "f").unwrap();
        let p3 = cal.fmr_table.iter().find(|p| p.fmr == 1e-3).unwrap();
        assert_eq!(p3.impostors_accepted, Some(50));
        let p5 = cal.fmr_table.iter().find(|p| p.fmr == 1e-5).unwrap();
        assert_eq!((p5.method.as_str(), p5.impostors_accepted), ("normal_tail", Some(0)));
        // 1e-4 rests on 5 impostors, 5e-4 on 25.
        assert_eq!(cal.min_supported_fmr(), Some(5e-4));
        // Classes overlapping only in 0.38-0.40: with equal class weights p = 0.5 falls in the
        // overlap although impostors outnumber genuine pairs 500 to 1 (unweighted, it would not).
        let boundary = -cal.intercept / cal.slope;
        assert!((0.37..0.41).contains(&boundary), "{boundary}");
    }

    #[test]
    fn confidence_known_points_and_monotonic() {
        let cal = fake_calibration();
        // z = 12 - 20·0.6 = 0 -> 50 %.
        assert!((cal.confidence(0.6) - 50.0).abs() < 1e-4);
        // z = 12 - 20·0.5 = 2 -> 100/(1+e^-2) = 88.0797
        assert!((cal.confidence(0.5) - 88.079_71).abs() < 1e-3);
        let mut prev = f32::INFINITY;
        for i in 0..200 {
            let c = cal.confidence(i as f32 * 0.01);
            assert!(c <= prev && (0.0..=100.0).contains(&c));
            prev = c;
        }
    }

    #[test]
    fn fmr_interpolation_in_log_space() {
        let cal = fake_calibration();
        assert!((cal.threshold_for_fmr(1e-3) - 0.5).abs() < 1e-6);
        assert!((cal.threshold_for_fmr(1e-2) - 0.6).abs() < 1e-6);
        // sqrt(1e-3·1e-2) is halfway in log space.
        assert!((cal.threshold_for_fmr((1e-5f64).sqrt()) - 0.55).abs() < 1e-6);
        assert!((cal.threshold_for_fmr(1e-9) - 0.5).abs() < 1e-6);
        assert!((cal.threshold_for_fmr(0.5) - 0.7).abs() < 1e-6);
        assert!((cal.threshold_for_fmr(f64::NAN) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn logistic_fit_recovers_symmetric_boundary() {
        // Overlapping classes symmetric around 0.6: the decision boundary (p = 0.5) is at 0.6.
        let genuine = [0.3, 0.4, 0.5, 0.55, 0.65];
        let impostor = [0.55, 0.65, 0.7, 0.8, 0.9];
        let (b0, b1) = fit_logistic(&genuine, &impostor);
        assert!(b1 < 0.0);
        assert!((-b0 / b1 - 0.6).abs() < 1e-9, "{}", -b0 / b1);
    }

    #[test]
    fn empirical_threshold_counts_impostors() {
        let imp: Vec<f64> = (0..1000).map(|i| 0.5 + i as f64 * 0.001).collect();
        // fmr 0.01 allows 10 impostors: halfway between the 10th (0.509) and 11th (0.510).
        assert!((empirical_threshold(&imp, 0.01).unwrap() - 0.5095).abs() < 1e-12);
        assert!(empirical_threshold(&imp, 0.0005).is_none());
    }

    #[test]
    fn normal_quantile_known_values() {
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-4);
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-4);
    }

    #[test]
    fn shipped_calibration_parses_and_is_monotonic() {
        let cal = Calibration::shipped().unwrap();
        assert!(cal.slope < 0.0);
        // The default operating point (config/default.toml: 0.001) must be supported.
        assert!(cal.check_target_fmr(1e-3).is_ok());
        let mut prev = 0.0f32;
        for fmr in [1e-5, 1e-4, 1e-3, 1e-2, 1e-1] {
            let t = cal.threshold_for_fmr(fmr);
            assert!(t >= prev, "threshold must grow with FMR");
            prev = t;
        }
    }
}
