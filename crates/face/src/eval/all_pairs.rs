//! `--impostors all`: every cross-identity pair of the file's images, thresholds and held-out folds.

use super::*;

/// Identity of a dataset image: its folder (`Name/Name_0001.jpg` -> `Name`).
pub fn identity_of(rel: &str) -> Option<&str> {
    rel.rsplit_once('/').map(|(dir, _)| dir).filter(|d| !d.is_empty())
}

/// Distances of every pair of a file's images (see the module doc), grouped by fold.
#[derive(Clone, Debug, Default)]
pub struct AllPairScores {
    pub images: usize,
    pub identities: usize,
    /// Same identity (and same fold): by fold (None when the file has no folds).
    pub genuine: HashMap<Option<i64>, Vec<f32>>,
    /// Cross identity: by the two images' folds, smaller first.
    pub impostor: HashMap<(Option<i64>, Option<i64>), Vec<f32>>,
    /// Same-identity pairs whose images sit in different folds (0 when folds are identity-disjoint).
    pub skipped_cross_fold: usize,
    /// SFace cosines of the same pairs, in the same order (NaN where an image has no SFace
    /// embedding); empty without SFace.
    pub genuine_second: HashMap<Option<i64>, Vec<f32>>,
    pub impostor_second: HashMap<(Option<i64>, Option<i64>), Vec<f32>>,
}

impl AllPairScores {
    pub fn genuine_all(&self) -> Vec<f32> {
        self.genuine.values().flatten().copied().collect()
    }

    pub fn impostor_all(&self) -> Vec<f32> {
        self.impostor.values().flatten().copied().collect()
    }

    /// (dlib distance, SFace cosine) of every same-identity pair, optionally leaving out a fold.
    pub fn genuine_both(&self, without: Option<i64>) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for (fold, d) in &self.genuine {
            if without.is_some() && *fold == without {
                continue;
            }
            let s = self.genuine_second.get(fold).map(Vec::as_slice).unwrap_or(&[]);
            out.extend(d.iter().zip(s.iter().chain(std::iter::repeat(&f32::NAN))).map(|(a, b)| (*a, *b)));
        }
        out
    }

    /// (dlib distance, SFace cosine) of every cross-identity pair, optionally among the images of
    /// the folds other than `without` only.
    pub fn impostor_both(&self, without: Option<i64>) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for ((a, b), d) in &self.impostor {
            if without.is_some() && (*a == without || *b == without) {
                continue;
            }
            let s = self.impostor_second.get(&(*a, *b)).map(Vec::as_slice).unwrap_or(&[]);
            out.extend(d.iter().zip(s.iter().chain(std::iter::repeat(&f32::NAN))).map(|(x, y)| (*x, *y)));
        }
        out
    }

    /// Every cross-identity pair among the images of the folds other than `fold`.
    pub fn impostor_without(&self, fold: i64) -> Vec<f32> {
        self.impostor
            .iter()
            .filter(|((a, b), _)| *a != Some(fold) && *b != Some(fold))
            .flat_map(|(_, v)| v.iter().copied())
            .collect()
    }
}

/// Scores every pair of the scored file's images from the embeddings in memory (plain: each
/// unordered pair of distinct images; document style: each document render against each plain
/// image of another photo).
pub fn all_pair_scores(scored: &ScoredPairs) -> Result<AllPairScores, FaceError> {
    let mut fold_of: HashMap<&str, Option<i64>> = HashMap::new();
    for p in &scored.pairs {
        fold_of.entry(p.img_a.as_str()).or_insert(p.fold);
        fold_of.entry(p.img_b.as_str()).or_insert(p.fold);
    }
    let mut ids: HashMap<&str, u32> = HashMap::new();
    // (source image, identity, fold, embedding)
    type Entry<'a> = (&'a str, u32, Option<i64>, &'a [f32], Option<&'a [f32]>);
    let (mut probes, mut gallery): (Vec<Entry>, Vec<Entry>) = (Vec::new(), Vec::new());
    let mut keys: Vec<&String> = scored.embeddings.keys().collect();
    keys.sort();
    for key in keys {
        let (rel, doc) = match key.strip_prefix("doc:") {
            Some(rel) => (rel, true),
            None => (key.as_str(), false),
        };
        let identity = identity_of(rel).ok_or_else(|| {
            FaceError::Data(format!("all pairs need image paths of the form IDENTITY/FILE, got {rel:?}"))
        })?;
        let next_id = ids.len() as u32;
        let id = *ids.entry(identity).or_insert(next_id);
        let second = scored.second.get(key).map(|e| e.0.as_slice());
        let entry =
            (rel, id, fold_of.get(rel).copied().flatten(), scored.embeddings[key].0.as_slice(), second);
        if doc { probes.push(entry) } else { gallery.push(entry) }
    }
    let mut all = AllPairScores { identities: ids.len(), ..Default::default() };
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt();
    let with_second = !scored.second.is_empty();
    let cosine = |a: Option<&[f32]>, b: Option<&[f32]>| match (a, b) {
        (Some(a), Some(b)) => a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
        _ => f32::NAN,
    };
    let add = |all: &mut AllPairScores, a: &Entry, b: &Entry| {
        let d = dist(a.3, b.3);
        if a.1 == b.1 {
            if a.2 == b.2 {
                all.genuine.entry(a.2).or_default().push(d);
                if with_second {
                    all.genuine_second.entry(a.2).or_default().push(cosine(a.4, b.4));
                }
            } else {
                all.skipped_cross_fold += 1;
            }
        } else {
            let key = if a.2 <= b.2 { (a.2, b.2) } else { (b.2, a.2) };
            all.impostor.entry(key).or_default().push(d);
            if with_second {
                all.impostor_second.entry(key).or_default().push(cosine(a.4, b.4));
            }
        }
    };
    if scored.document_style {
        all.images = probes.len() + gallery.len();
        let progress = Progress::new("scoring all pairs", probes.len() * gallery.len());
        for a in &probes {
            for b in gallery.iter().filter(|b| b.0 != a.0) {
                add(&mut all, a, b);
            }
            progress.tick(gallery.len());
        }
        progress.finish();
    } else {
        all.images = gallery.len();
        let n = gallery.len();
        let progress = Progress::new("scoring all pairs", n * n.saturating_sub(1) / 2);
        for (i, a) in gallery.iter().enumerate() {
            for b in &gallery[i + 1..] {
                add(&mut all, a, b);
            }
            progress.tick(n - i - 1);
        }
        progress.finish();
    }
    Ok(all)
}

/// Empirical distance threshold for `fmr` on unsorted impostor distances, as
/// [`crate::calibration::empirical_threshold`] (k = ⌊fmr·n⌋ impostors at or below it, halfway to
/// the next), with k; None when the set allows no impostor at this rate.
pub fn threshold_at_fmr(impostor: &[f32], fmr: f64) -> Option<(f64, usize)> {
    let n = impostor.len();
    let k = (fmr * n as f64).floor() as usize;
    if k == 0 || k >= n {
        return None;
    }
    let mut v = impostor.to_vec();
    let (below, kth, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    let last_below = below.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    Some(((last_below as f64 + *kth as f64) / 2.0, k))
}

pub(crate) fn count_at_or_below(ds: &[f32], t: f32) -> usize {
    ds.iter().filter(|&&d| d <= t).count()
}

pub(crate) fn pct(k: usize, n: usize) -> f64 {
    100.0 * k as f64 / n.max(1) as f64
}

/// All-pairs figures: rates at the configured threshold, FNMR at FMR 10⁻³ and 10⁻⁴, and, when the
/// file has folds, the held-out-fold figure at `target_fmr`.
pub fn all_pairs_summary(
    scored: &ScoredPairs,
    all: &AllPairScores,
    threshold_distance: f32,
    target_fmr: f64,
) -> AllPairsSummary {
    let genuine = all.genuine_all();
    let impostor = all.impostor_all();
    let file_genuine: Vec<f32> =
        scored.pairs.iter().filter(|p| p.same).map(|p| p.distance.unwrap_or(f32::INFINITY)).collect();
    let impostors_accepted = count_at_or_below(&impostor, threshold_distance);
    let genuine_rejected = genuine.len() - count_at_or_below(&genuine, threshold_distance);
    let at_fmr = [1e-3, 1e-4]
        .into_iter()
        .map(|fmr| match threshold_at_fmr(&impostor, fmr) {
            Some((t, _)) => {
                let t32 = t as f32;
                FnmrAtFmr {
                    fmr,
                    threshold: Some(t),
                    impostors_accepted: count_at_or_below(&impostor, t32),
                    fnmr_all: 100.0 - pct(count_at_or_below(&genuine, t32), genuine.len()),
                    fnmr_pairs: 100.0 - pct(count_at_or_below(&file_genuine, t32), file_genuine.len()),
                }
            }
            None => {
                FnmrAtFmr { fmr, threshold: None, impostors_accepted: 0, fnmr_all: 100.0, fnmr_pairs: 100.0 }
            }
        })
        .collect();
    let mut fold_ids: Vec<i64> = scored.pairs.iter().filter_map(|p| p.fold).collect();
    fold_ids.sort();
    fold_ids.dedup();
    let held_out = (fold_ids.len() >= 2 && scored.pairs.iter().all(|p| p.fold.is_some()))
        .then(|| {
            let folds: Vec<HeldOutFold> = fold_ids
                .iter()
                .filter_map(|&f| {
                    let train = all.impostor_without(f);
                    let (t, k) = threshold_at_fmr(&train, target_fmr)?;
                    let t32 = t as f32;
                    let test: Vec<&ScoredPair> = scored.pairs.iter().filter(|p| p.fold == Some(f)).collect();
                    let accepted = |p: &&ScoredPair| p.distance.is_some_and(|d| d <= t32);
                    let cross = all.impostor.get(&(Some(f), Some(f))).map(Vec::as_slice).unwrap_or(&[]);
                    Some(HeldOutFold {
                        fold: f,
                        threshold: t,
                        train_impostors: train.len(),
                        train_accepted: k,
                        pairs: test.len(),
                        correct: test.iter().filter(|p| accepted(p) == p.same).count(),
                        impostor_pairs: test.iter().filter(|p| !p.same).count(),
                        false_matches: test.iter().filter(|p| !p.same && accepted(p)).count(),
                        genuine_pairs: test.iter().filter(|p| p.same).count(),
                        false_non_matches: test.iter().filter(|p| p.same && !accepted(p)).count(),
                        cross_impostors: cross.len(),
                        cross_false_matches: count_at_or_below(cross, t32),
                    })
                })
                .collect();
            if folds.is_empty() {
                return None;
            }
            let accs: Vec<f64> = folds.iter().map(|f| pct(f.correct, f.pairs)).collect();
            let mean = accs.iter().sum::<f64>() / accs.len() as f64;
            let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64).sqrt();
            let sum = |g: fn(&HeldOutFold) -> usize| folds.iter().map(g).sum::<usize>();
            Some(HeldOutFolds {
                target_fmr,
                mean_accuracy: mean,
                std_accuracy: std,
                fmr_pairs: pct(sum(|f| f.false_matches), sum(|f| f.impostor_pairs)),
                fmr_cross: pct(sum(|f| f.cross_false_matches), sum(|f| f.cross_impostors)),
                folds,
            })
        })
        .flatten();
    AllPairsSummary {
        images: all.images,
        identities: all.identities,
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        skipped_cross_fold: all.skipped_cross_fold,
        impostors_accepted,
        genuine_rejected,
        fmr_at_threshold: pct(impostors_accepted, impostor.len()),
        fnmr_at_threshold: pct(genuine_rejected, genuine.len()),
        at_fmr,
        held_out,
    }
}
