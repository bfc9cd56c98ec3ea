//! dlib + SFace: the fused score and the cascade's uncertainty band, fitted on the calibration set.
//!
//! Fused score s = z_dlib + z_sface, each cosine z-scored with the mean and standard deviation of
//! the calibration set's impostor cosines (dlib's cosine is 1 − d²/2 of its unit-length distance d).
//! Higher is more alike; a pair matches when s ≥ the fused threshold of the target FMR, fitted
//! empirically on the impostor pairs like dlib's.
//!
//! The cascade runs SFace only when dlib's distance falls inside a band around dlib's threshold.
//! For each table FMR the band is fitted so that it holds [`BAND_COVERAGE`] of the pairs whose
//! decision the fusion changes (dlib alone vs fused, each at that FMR), per class; outside it dlib
//! decides alone. Thresholds and bands in between table FMRs are interpolated in log10(FMR).

use serde::{Deserialize, Serialize};

use crate::FaceError;
use crate::calibration::{Calibration, MIN_SUPPORT, fit_logistic};

/// Share of the changed pairs of each class (genuine, impostor) that the band must hold.
pub const BAND_COVERAGE: f64 = 0.99;

/// FMRs of the fusion table.
pub const FUSION_FMRS: [f64; 6] = [1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2];

/// Which recognizers decide a match (config `face_recognizers`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recognizers {
    /// dlib alone far from its threshold, the fused score inside the band.
    #[default]
    Cascade,
    /// dlib alone on every pair (SFace is not loaded).
    Dlib,
    /// The fused score on every pair.
    Fused,
}

impl Recognizers {
    pub fn parse(text: &str) -> Option<Recognizers> {
        match text {
            "cascade" => Some(Recognizers::Cascade),
            "dlib" => Some(Recognizers::Dlib),
            "fused" => Some(Recognizers::Fused),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Recognizers::Cascade => "cascade",
            Recognizers::Dlib => "dlib",
            Recognizers::Fused => "fused",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FusionPoint {
    pub fmr: f64,
    /// Fused score at or above which a pair matches.
    pub threshold: f64,
    pub impostors_accepted: usize,
    pub fnmr: f64,
    /// dlib distances between which the cascade asks SFace.
    pub band_low: f64,
    pub band_high: f64,
    /// Pairs whose decision the fusion changes at this FMR (genuine, impostor), and those of them
    /// outside the band (decided by dlib alone in the cascade).
    pub changed: [usize; 2],
    pub changed_outside_band: [usize; 2],
    /// Shares of the genuine and impostor pairs inside the band.
    pub in_band: [f64; 2],
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fusion {
    pub second_recognizer: String,
    pub dlib_impostor_mean: f64,
    pub dlib_impostor_std: f64,
    pub second_impostor_mean: f64,
    pub second_impostor_std: f64,
    /// P(same | s) = 1 / (1 + exp(−(intercept + slope · s))), classes weighted equally.
    pub intercept: f64,
    pub slope: f64,
    pub band_coverage: f64,
    pub table: Vec<FusionPoint>,
}

/// Threshold and band at one target FMR.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FusedOperatingPoint {
    pub threshold: f64,
    pub band_low: f64,
    pub band_high: f64,
}

/// Whether a dlib distance lies in the cascade's band.
pub fn in_band(point: &FusedOperatingPoint, dlib_distance: f32) -> bool {
    (point.band_low..=point.band_high).contains(&(dlib_distance as f64))
}

/// The decision of `mode` for a pair with dlib distance `distance` and SFace cosine `second`
/// (asked only when needed), and whether SFace was asked.
pub fn decide(
    mode: Recognizers,
    dlib_threshold: f32,
    fusion: &Fusion,
    point: &FusedOperatingPoint,
    distance: f32,
    second: impl FnOnce() -> Option<f32>,
) -> (bool, bool) {
    let use_second = match mode {
        Recognizers::Dlib => false,
        Recognizers::Fused => true,
        Recognizers::Cascade => in_band(point, distance),
    };
    if !use_second {
        return (distance <= dlib_threshold, false);
    }
    let matched = second().is_some_and(|c| fusion.score(distance, c) >= point.threshold);
    (matched, true)
}

/// dlib's cosine from its unit-length Euclidean distance.
pub fn dlib_cosine(distance: f32) -> f64 {
    1.0 - (distance as f64).powi(2) / 2.0
}

impl Fusion {
    pub fn score(&self, dlib_distance: f32, second_cosine: f32) -> f64 {
        (dlib_cosine(dlib_distance) - self.dlib_impostor_mean) / self.dlib_impostor_std
            + (second_cosine as f64 - self.second_impostor_mean) / self.second_impostor_std
    }

    /// 100 · P(same | fused score).
    pub fn confidence(&self, score: f64) -> f32 {
        (100.0 / (1.0 + (-(self.intercept + self.slope * score)).exp())) as f32
    }

    /// The operating point for `fmr`, interpolated in log10(FMR), clamped to the table.
    pub fn operating_point(&self, fmr: f64) -> FusedOperatingPoint {
        let at = |p: &FusionPoint| FusedOperatingPoint {
            threshold: p.threshold,
            band_low: p.band_low,
            band_high: p.band_high,
        };
        let mut table: Vec<&FusionPoint> = self.table.iter().collect();
        table.sort_by(|a, b| a.fmr.total_cmp(&b.fmr));
        let (first, last) = (table[0], table[table.len() - 1]);
        if !(fmr > first.fmr) {
            return at(first);
        }
        if fmr >= last.fmr {
            return at(last);
        }
        for w in table.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            if fmr <= hi.fmr {
                let t = (fmr.log10() - lo.fmr.log10()) / (hi.fmr.log10() - lo.fmr.log10());
                let mix = |a: f64, b: f64| a + t * (b - a);
                return FusedOperatingPoint {
                    threshold: mix(lo.threshold, hi.threshold),
                    band_low: mix(lo.band_low, hi.band_low),
                    band_high: mix(lo.band_high, hi.band_high),
                };
            }
        }
        at(last)
    }
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (n, sum) = values.clone().fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    let mean = sum / n.max(1) as f64;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
    (mean, var.sqrt())
}

/// The value below which a share `q` of the sorted values lies (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).floor() as usize).min(sorted.len() - 1);
    Some(sorted[i])
}

/// Fits the fusion on (dlib distance, SFace cosine) pairs; `dlib` gives dlib's thresholds.
pub fn fit(
    genuine: &[(f32, f32)],
    impostor: &[(f32, f32)],
    dlib: &Calibration,
    second_recognizer: &str,
) -> Result<Fusion, FaceError> {
    if genuine.len() < 2 || impostor.len() < 2 {
        return Err(FaceError::Calibration("fusion needs genuine and impostor pairs".into()));
    }
    let (dm, ds) = mean_std(impostor.iter().map(|p| dlib_cosine(p.0)));
    let (sm, ss) = mean_std(impostor.iter().map(|p| p.1 as f64));
    let mut fusion = Fusion {
        second_recognizer: second_recognizer.into(),
        dlib_impostor_mean: dm,
        dlib_impostor_std: ds,
        second_impostor_mean: sm,
        second_impostor_std: ss,
        intercept: 0.0,
        slope: 0.0,
        band_coverage: BAND_COVERAGE,
        table: Vec::new(),
    };
    let g_scores: Vec<f64> = genuine.iter().map(|p| fusion.score(p.0, p.1)).collect();
    let i_scores: Vec<f64> = impostor.iter().map(|p| fusion.score(p.0, p.1)).collect();
    // fit_logistic wants a score that falls with similarity.
    let neg = |v: &[f64]| v.iter().map(|s| -s).collect::<Vec<f64>>();
    let (b0, b1) = fit_logistic(&neg(&g_scores), &neg(&i_scores));
    fusion.intercept = b0;
    fusion.slope = -b1;
    let mut sorted_desc = i_scores.clone();
    sorted_desc.sort_by(|a, b| b.total_cmp(a));
    for fmr in FUSION_FMRS {
        let k = (fmr * sorted_desc.len() as f64).floor() as usize;
        if k < MIN_SUPPORT || k >= sorted_desc.len() {
            continue;
        }
        let threshold = (sorted_desc[k - 1] + sorted_desc[k]) / 2.0;
        let dlib_t = dlib.threshold_for_fmr(fmr);
        // dlib distances of the pairs whose decision changes, per class.
        let changed = |pairs: &[(f32, f32)], scores: &[f64]| -> Vec<f64> {
            let mut v: Vec<f64> = pairs
                .iter()
                .zip(scores)
                .filter(|(p, s)| (p.0 <= dlib_t) != (**s >= threshold))
                .map(|(p, _)| p.0 as f64)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (cg, ci) = (changed(genuine, &g_scores), changed(impostor, &i_scores));
        let tail = (1.0 - BAND_COVERAGE) / 2.0;
        let low =
            [quantile(&cg, tail), quantile(&ci, tail)].into_iter().flatten().fold(dlib_t as f64, f64::min);
        let high = [quantile(&cg, 1.0 - tail), quantile(&ci, 1.0 - tail)]
            .into_iter()
            .flatten()
            .fold(dlib_t as f64, f64::max);
        let outside = |v: &[f64]| v.iter().filter(|&&d| d < low || d > high).count();
        let in_band = |pairs: &[(f32, f32)]| {
            pairs.iter().filter(|p| (low..=high).contains(&(p.0 as f64))).count() as f64 / pairs.len() as f64
        };
        fusion.table.push(FusionPoint {
            fmr,
            threshold,
            impostors_accepted: i_scores.iter().filter(|&&s| s >= threshold).count(),
            fnmr: g_scores.iter().filter(|&&s| s < threshold).count() as f64 / g_scores.len() as f64,
            band_low: low,
            band_high: high,
            changed: [cg.len(), ci.len()],
            changed_outside_band: [outside(&cg), outside(&ci)],
            in_band: [in_band(genuine), in_band(impostor)],
        });
    }
    if fusion.table.is_empty() {
        return Err(FaceError::Calibration("too few impostor pairs for any fusion threshold".into()));
    }
    Ok(fusion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fusion() -> Fusion {
        let point = |fmr: f64, threshold: f64, low: f64, high: f64| FusionPoint {
            fmr,
            threshold,
            impostors_accepted: 0,
            fnmr: 0.0,
            band_low: low,
            band_high: high,
            changed: [0, 0],
            changed_outside_band: [0, 0],
            in_band: [0.0, 0.0],
        };
        Fusion {
            second_recognizer: "fake".into(),
            dlib_impostor_mean: 0.8,
            dlib_impostor_std: 0.05,
            second_impostor_mean: 0.1,
            second_impostor_std: 0.1,
            intercept: -8.0,
            slope: 1.0,
            band_coverage: BAND_COVERAGE,
            table: vec![point(1e-4, 10.0, 0.30, 0.36), point(1e-2, 6.0, 0.38, 0.45)],
        }
    }

    #[test]
    fn score_adds_the_z_scored_cosines() {
        let f = fusion();
        // d = 0.4: dlib cosine 0.92 -> z 2.4; SFace 0.5 -> z 4.
        assert!((f.score(0.4, 0.5) - 6.4).abs() < 1e-6);
        assert!((f.confidence(8.0) - 50.0).abs() < 1e-4);
    }

    #[test]
    fn operating_point_interpolates_in_log_fmr() {
        let f = fusion();
        let mid = f.operating_point(1e-3);
        assert!((mid.threshold - 8.0).abs() < 1e-9 && (mid.band_low - 0.34).abs() < 1e-9);
        assert_eq!(f.operating_point(1e-6).threshold, 10.0);
        assert_eq!(f.operating_point(0.5).band_high, 0.45);
    }

    #[test]
    fn fit_finds_a_band_around_the_pairs_the_fusion_changes() {
        // dlib and the second score disagree only near dlib's threshold (0.5 here).
        let dlib = Calibration::from_json(
            r#"{"version":"v","recognizer":"r","fittedOn":"f","genuinePairs":1,"impostorPairs":1,
            "intercept":30.0,"slope":-60.0,"impostorMean":0.9,"impostorStd":0.1,
            "fmrTable":[{"fmr":0.0001,"distance":0.5,"method":"empirical"},{"fmr":0.1,"distance":0.5,"method":"empirical"}]}"#,
        )
        .unwrap();
        let genuine: Vec<(f32, f32)> = (0..200).map(|i| (0.2 + i as f32 * 0.0016, 0.7)).collect();
        let impostor: Vec<(f32, f32)> = (0..200_000)
            .map(|i| (0.45 + (i % 1000) as f32 * 0.001, (i * 7919 % 997) as f32 * 1e-4))
            .collect();
        let f = fit(&genuine, &impostor, &dlib, "fake").unwrap();
        assert!(f.slope > 0.0);
        let p = f.table.iter().find(|p| p.fmr == 1e-3).unwrap();
        assert!((195..=205).contains(&p.impostors_accepted), "{p:?}");
        assert!(p.band_low <= 0.5 && p.band_high >= 0.5, "{p:?}");
        // Pairs far below dlib's threshold stay outside the band.
        assert!(p.band_low > 0.3 && p.in_band[0] < 0.5, "{p:?}");
    }
}
