//! Verification figures on scored pairs: accuracy, TAR at FMR, EER, AUC, the summary.

use super::*;

/// Fraction of correct decisions with "match" = distance ≤ t (missing distance = non-match).
pub(crate) fn accuracy_at(pairs: &[(f64, bool)], t: f64) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.iter().filter(|(d, same)| (*d <= t) == *same).count() as f64 / pairs.len() as f64
}

/// Threshold maximizing accuracy (candidates: midpoints between sorted distances).
pub(crate) fn best_threshold(pairs: &[(f64, bool)]) -> (f64, f64) {
    let mut ds: Vec<f64> = pairs.iter().map(|p| p.0).filter(|d| d.is_finite()).collect();
    ds.sort_by(f64::total_cmp);
    ds.dedup();
    let mut candidates = vec![ds.first().map(|d| d - 1e-6).unwrap_or(0.0)];
    candidates.extend(ds.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates.extend(ds.last().map(|d| d + 1e-6));
    // Sweep in order with running counts to stay O(n log n).
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total_impostor = sorted.iter().filter(|p| !p.1).count();
    let (mut best_t, mut best_acc) = (candidates[0], -1.0);
    let (mut i, mut genuine_below, mut impostor_below) = (0usize, 0usize, 0usize);
    for t in candidates {
        while i < sorted.len() && sorted[i].0 <= t {
            if sorted[i].1 {
                genuine_below += 1
            } else {
                impostor_below += 1
            }
            i += 1;
        }
        let correct = genuine_below + (total_impostor - impostor_below);
        let acc = correct as f64 / sorted.len().max(1) as f64;
        if acc > best_acc {
            best_acc = acc;
            best_t = t;
        }
    }
    (best_t, best_acc)
}

/// TAR at the largest threshold whose impostor rate stays ≤ fmr (strictly below the smallest
/// impostor when the set is too small to allow even one).
pub(crate) fn tar_at_fmr(genuine: &[f64], sorted_impostor: &[f64], fmr: f64) -> f64 {
    if genuine.is_empty() || sorted_impostor.is_empty() {
        return 0.0;
    }
    let k = (fmr * sorted_impostor.len() as f64).floor() as usize;
    let limit = sorted_impostor[k.min(sorted_impostor.len() - 1)];
    genuine.iter().filter(|&&d| d < limit).count() as f64 / genuine.len() as f64
}

/// Equal error rate: where FMR (impostor d ≤ t) meets FNMR (genuine d > t).
pub(crate) fn eer(genuine: &[f64], impostor: &[f64]) -> f64 {
    let mut ts: Vec<f64> = genuine.iter().chain(impostor).copied().filter(|d| d.is_finite()).collect();
    ts.sort_by(f64::total_cmp);
    let mut best = (f64::INFINITY, 1.0);
    for t in ts {
        let fmr = impostor.iter().filter(|&&d| d <= t).count() as f64 / impostor.len().max(1) as f64;
        let fnmr = genuine.iter().filter(|&&d| d > t).count() as f64 / genuine.len().max(1) as f64;
        let gap = (fmr - fnmr).abs();
        if gap < best.0 {
            best = (gap, (fmr + fnmr) / 2.0);
        }
    }
    best.1
}

/// ROC AUC = P(genuine distance < impostor distance), ties count half.
pub(crate) fn auc(genuine: &[f64], impostor: &[f64]) -> f64 {
    if genuine.is_empty() || impostor.is_empty() {
        return 0.0;
    }
    let mut sorted_imp = impostor.to_vec();
    sorted_imp.sort_by(f64::total_cmp);
    let mut total = 0.0;
    for &g in genuine {
        let above = sorted_imp.len() - sorted_imp.partition_point(|&d| d <= g);
        let ties = sorted_imp.partition_point(|&d| d <= g) - sorted_imp.partition_point(|&d| d < g);
        total += above as f64 + 0.5 * ties as f64;
    }
    total / (genuine.len() * impostor.len()) as f64
}

pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Figures from scored pairs at a given distance threshold.
pub fn summarize(scored: &ScoredPairs, threshold_distance: f32) -> EvalSummary {
    let all: Vec<(f64, bool)> =
        scored.pairs.iter().map(|p| (p.distance.map(f64::from).unwrap_or(f64::INFINITY), p.same)).collect();
    let genuine: Vec<f64> = all.iter().filter(|p| p.1).map(|p| p.0).collect();
    let mut impostor: Vec<f64> = all.iter().filter(|p| !p.1).map(|p| p.0).collect();
    impostor.sort_by(f64::total_cmp);
    let t = threshold_distance as f64;
    let (best_t, best_acc) = best_threshold(&all);
    let impostors_accepted = impostor.iter().filter(|&&d| d <= t).count();
    let genuine_rejected = genuine.iter().filter(|&&d| d > t).count();
    let fmr_t = impostors_accepted as f64 / impostor.len().max(1) as f64;
    let fnmr_t = genuine_rejected as f64 / genuine.len().max(1) as f64;
    let mut fold_ids: Vec<i64> = scored.pairs.iter().filter_map(|p| p.fold).collect();
    fold_ids.sort();
    fold_ids.dedup();
    let folds = (fold_ids.len() >= 2 && scored.pairs.iter().all(|p| p.fold.is_some())).then(|| {
        let accs: Vec<f64> = fold_ids
            .iter()
            .map(|&f| {
                let train: Vec<(f64, bool)> = scored
                    .pairs
                    .iter()
                    .zip(&all)
                    .filter(|(p, _)| p.fold != Some(f))
                    .map(|(_, a)| *a)
                    .collect();
                let test: Vec<(f64, bool)> = scored
                    .pairs
                    .iter()
                    .zip(&all)
                    .filter(|(p, _)| p.fold == Some(f))
                    .map(|(_, a)| *a)
                    .collect();
                let (t, _) = best_threshold(&train);
                accuracy_at(&test, t)
            })
            .collect();
        let mean = accs.iter().sum::<f64>() / accs.len() as f64;
        let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64).sqrt();
        FoldFigure { folds: accs.len(), mean_accuracy: 100.0 * mean, std_accuracy: 100.0 * std }
    });
    EvalSummary {
        pairs: all.len(),
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        images: scored.images,
        detect_fail_images: scored.detect_failures.len(),
        detect_fail_pairs: scored.pairs.iter().filter(|p| p.distance.is_none()).count(),
        threshold_distance,
        accuracy: 100.0 * accuracy_at(&all, t),
        fmr_at_threshold: 100.0 * fmr_t,
        fnmr_at_threshold: 100.0 * fnmr_t,
        impostors_accepted,
        genuine_rejected,
        best_accuracy: 100.0 * best_acc,
        best_threshold: best_t,
        tar_at_fmr_1: 100.0 * tar_at_fmr(&genuine, &impostor, 0.01),
        tar_at_fmr_0_1: 100.0 * tar_at_fmr(&genuine, &impostor, 0.001),
        eer: 100.0 * eer(&genuine, &impostor),
        auc: auc(&genuine, &impostor),
        median_ms_per_image: median(&scored.ms_per_image),
        folds,
        all_pairs: None,
        errors_at_threshold: {
            let wrong: Vec<PairError> = scored
                .pairs
                .iter()
                .filter(|p| p.distance.is_some_and(|d| d as f64 <= t) != p.same)
                .map(|p| PairError {
                    img_a: p.img_a.clone(),
                    img_b: p.img_b.clone(),
                    same: p.same,
                    distance: p.distance,
                })
                .collect();
            if wrong.len() <= MAX_LISTED_ERRORS { wrong } else { Vec::new() }
        },
    }
}
