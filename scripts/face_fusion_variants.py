#!/usr/bin/env python3
"""Fusion variants of dlib + SFace under the 5-fold protocol of `idverify eval faces --impostors all`.

Reads the embedding cache that `idverify eval faces --pairs PAIRS --embedding-cache FILE` writes
(plain mode, SFace loaded) and, for each fold, fits every variant on the other folds only
(genuine: same-identity pairs within those folds; impostor: every cross-identity pair among their
images), then applies it at the target FMR to the fold's official pairs and its cross-identity
pairs. Prints one line per variant: mean ± std accuracy, errors, held-out realised FMR.

  python3 scripts/face_fusion_variants.py PAIRS.csv CACHE.json [--fmr 0.001] [--errata ERRATA.csv]

`--errata` relabels the official pairs it lists (`img_a,img_b,same,note`, e.g.
docs/lfw-dev-errata.csv), as `idverify eval faces --errata` does.

Needs numpy. The thresholds follow the Rust code: k = floor(fmr * n) impostors accepted, halfway
between the k-th and (k+1)-th highest impostor score.
"""

import argparse
import csv
import json
import math

import numpy as np


def load(pairs_csv, cache_path, errata_csv=None):
    rows = list(csv.DictReader(open(pairs_csv)))
    if errata_csv:
        fixed = {(r["img_a"], r["img_b"]): r["same"] for r in csv.DictReader(open(errata_csv))}
        missing = set(fixed) - {(r["img_a"], r["img_b"]) for r in rows}
        if missing:
            raise SystemExit(f"{errata_csv}: not in the pairs file: {sorted(missing)}")
        rows = [dict(r, same=fixed.get((r["img_a"], r["img_b"]), r["same"])) for r in rows]
    cache = json.load(open(cache_path))["images"]
    fold_of = {}
    for r in rows:
        f = int(r["fold"])
        fold_of.setdefault(r["img_a"], f)
        fold_of.setdefault(r["img_b"], f)
    keys = sorted(k for k, v in cache.items() if k in fold_of and v["dlib"] is not None)
    dlib = np.array([cache[k]["dlib"] for k in keys], dtype=np.float64)
    sface = np.array([cache[k]["second"] for k in keys], dtype=np.float64)
    ident = {}
    ids = np.array([ident.setdefault(k.rsplit("/", 1)[0], len(ident)) for k in keys])
    folds = np.array([fold_of[k] for k in keys])
    index = {k: i for i, k in enumerate(keys)}
    official = []
    for r in rows:
        a, b = index.get(r["img_a"]), index.get(r["img_b"])
        official.append((a, b, r["same"].strip() in ("1", "true", "yes"), int(r["fold"])))
    return dlib, sface, ids, folds, official


def all_pairs(dlib, sface, ids, folds):
    n = len(ids)
    i, j = np.triu_indices(n, 1)
    cd = (dlib @ dlib.T)[i, j]
    cs = (sface @ sface.T)[i, j]
    same = ids[i] == ids[j]
    fi, fj = folds[i], folds[j]
    keep = ~same | (fi == fj)
    return dict(cd=cd[keep], cs=cs[keep], same=same[keep], fi=fi[keep], fj=fj[keep])


def threshold(impostor_scores, fmr):
    """Higher score = more alike; accept s >= t."""
    s = np.sort(impostor_scores)[::-1]
    k = int(math.floor(fmr * len(s)))
    if k == 0:
        return s[0] + 1e-9
    return (s[k - 1] + s[k]) / 2.0


def fnmr_at(gen, imp, fmr):
    t = threshold(imp, fmr)
    return float(np.mean(gen < t))


def zparams(x):
    return x.mean(), x.std(ddof=1)


def fit_logistic(X, y, iters=50):
    """Class-balanced logistic regression (Newton), returns weights incl. intercept last."""
    X1 = np.hstack([X, np.ones((len(X), 1))])
    w_pos = 0.5 / y.sum()
    w_neg = 0.5 / (len(y) - y.sum())
    sw = np.where(y == 1, w_pos, w_neg)
    beta = np.zeros(X1.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X1 @ beta))
        g = X1.T @ (sw * (y - p))
        H = (X1 * (sw * p * (1 - p))[:, None]).T @ X1 + 1e-9 * np.eye(X1.shape[1])
        step = np.linalg.solve(H, g)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


class Variant:
    """fit(train) -> scorer(cd, cs) returning a higher-is-more-alike score."""

    def __init__(self, name, fit, threshold_from="cross"):
        self.name, self.fit, self.threshold_from = name, fit, threshold_from


def z_sum(w=0.5, stats="impostor"):
    def fit(tr):
        imp = ~tr["same"]
        if stats == "impostor":
            dm, ds = zparams(tr["cd"][imp])
            sm, ss = zparams(tr["cs"][imp])
        elif stats == "tail":  # the impostors above their 99th percentile
            qd, qs = np.quantile(tr["cd"][imp], 0.99), np.quantile(tr["cs"][imp], 0.99)
            dm, ds = zparams(tr["cd"][imp][tr["cd"][imp] >= qd])
            sm, ss = zparams(tr["cs"][imp][tr["cs"][imp] >= qs])
        else:  # pooled within-class std, class means difference (d')
            g = tr["same"]
            dm = tr["cd"][imp].mean()
            sm = tr["cs"][imp].mean()
            ds = math.sqrt((tr["cd"][imp].var() + tr["cd"][g].var()) / 2)
            ss = math.sqrt((tr["cs"][imp].var() + tr["cs"][g].var()) / 2)
        return lambda cd, cs: 2 * (w * (cd - dm) / ds + (1 - w) * (cs - sm) / ss)
    return fit


def z_weight_tuned(fmr, grid=np.linspace(0.2, 0.8, 25)):
    """Weight chosen on the training folds: lowest FNMR at `fmr` on their all pairs."""
    def fit(tr):
        imp = ~tr["same"]
        dm, ds = zparams(tr["cd"][imp])
        sm, ss = zparams(tr["cs"][imp])
        zd, zs = (tr["cd"] - dm) / ds, (tr["cs"] - sm) / ss
        best = min(grid, key=lambda w: (fnmr_at((w * zd + (1 - w) * zs)[tr["same"]],
                                                (w * zd + (1 - w) * zs)[imp], fmr), abs(w - 0.5)))
        fit.chosen.append(best)
        return lambda cd, cs: 2 * (best * (cd - dm) / ds + (1 - best) * (cs - sm) / ss)
    fit.chosen = []
    return fit


def logistic(features="cos"):
    def fit(tr):
        imp = ~tr["same"]
        dm, ds = zparams(tr["cd"][imp])
        sm, ss = zparams(tr["cs"][imp])
        X = np.stack([(tr["cd"] - dm) / ds, (tr["cs"] - sm) / ss], axis=1)
        beta = fit_logistic(X, tr["same"].astype(float))
        fit.weights.append(beta[0] / (beta[0] + beta[1]))
        return lambda cd, cs: beta[0] * (cd - dm) / ds + beta[1] * (cs - sm) / ss
    fit.weights = []
    return fit


def single(which):
    return lambda tr: (lambda cd, cs: cd if which == "dlib" else cs)


def evaluate(P, official, dlib, sface, variant, fmr):
    accs, errs, cross_acc, cross_n, reached = [], 0, 0, 0, 0
    for f in sorted(set(o[3] for o in official)):
        train_mask = (P["fi"] != f) & (P["fj"] != f)
        tr = {k: v[train_mask] for k, v in P.items()}
        scorer = variant.fit(tr)
        if variant.threshold_from == "cross":
            t = threshold(scorer(tr["cd"], tr["cs"])[~tr["same"]], fmr)
        else:  # the other folds' official impostor pairs only (the earlier protocol)
            imp = [(a, b) for a, b, same, g in official if g != f and not same and a is not None]
            a, b = np.array([p[0] for p in imp]), np.array([p[1] for p in imp])
            cd = np.einsum("ij,ij->i", dlib[a], dlib[b])
            cs = np.einsum("ij,ij->i", sface[a], sface[b])
            t = threshold(scorer(cd, cs), fmr)
        right = 0
        test = [o for o in official if o[3] == f]
        for a, b, same, _ in test:
            if a is None or b is None:
                matched = False
            else:
                matched = scorer(float(dlib[a] @ dlib[b]), float(sface[a] @ sface[b])) >= t
            right += matched == same
        accs.append(100.0 * right / len(test))
        errs += len(test) - right
        held = (P["fi"] == f) & (P["fj"] == f) & ~P["same"]
        cross_acc += int(np.sum(scorer(P["cd"][held], P["cs"][held]) >= t))
        cross_n += int(held.sum())
    return np.mean(accs), np.std(accs), errs, 100.0 * cross_acc / cross_n


def cascade_band(tr, scorer, t_fused, t_dlib_cos, coverage):
    """The Rust fit: dlib-cosine band holding `coverage` of each class's changed decisions."""
    s = scorer(tr["cd"], tr["cs"])
    lo, hi = t_dlib_cos, t_dlib_cos
    tail = (1 - coverage) / 2
    for cls in (tr["same"], ~tr["same"]):
        changed = np.sort(tr["cd"][cls & ((tr["cd"] >= t_dlib_cos) != (s >= t_fused))])
        if len(changed):
            idx = lambda q: changed[min(int(math.floor(q * len(changed))), len(changed) - 1)]
            lo, hi = min(lo, idx(tail)), max(hi, idx(1 - tail))
    return lo, hi


def evaluate_cascade(P, official, dlib, sface, coverage, fmr):
    """The cascade with the shipped z-sum: dlib alone outside the band (in dlib cosine)."""
    accs, errs, reached, n, cross_acc, cross_n = [], 0, 0, 0, 0, 0
    for f in sorted(set(o[3] for o in official)):
        train_mask = (P["fi"] != f) & (P["fj"] != f)
        tr = {k: v[train_mask] for k, v in P.items()}
        scorer = z_sum()(tr)
        t = threshold(scorer(tr["cd"], tr["cs"])[~tr["same"]], fmr)
        td = threshold(tr["cd"][~tr["same"]], fmr)
        lo, hi = cascade_band(tr, scorer, t, td, coverage)

        def decide(cd, cs):
            inside = (cd >= lo) & (cd <= hi)
            return np.where(inside, scorer(cd, cs) >= t, cd >= td), inside
        test = [o for o in official if o[3] == f and o[0] is not None and o[1] is not None]
        a, b = np.array([o[0] for o in test]), np.array([o[1] for o in test])
        same = np.array([o[2] for o in test])
        m, inside = decide(np.einsum("ij,ij->i", dlib[a], dlib[b]), np.einsum("ij,ij->i", sface[a], sface[b]))
        total = sum(1 for o in official if o[3] == f)
        right = int(np.sum(m == same))
        accs.append(100.0 * right / total)
        errs += total - right
        reached += int(inside.sum())
        n += total
        held = (P["fi"] == f) & (P["fj"] == f) & ~P["same"]
        cross_acc += int(decide(P["cd"][held], P["cs"][held])[0].sum())
        cross_n += int(held.sum())
    return np.mean(accs), np.std(accs), errs, 100.0 * cross_acc / cross_n, 100.0 * reached / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs")
    ap.add_argument("cache")
    ap.add_argument("--fmr", type=float, default=1e-3)
    ap.add_argument("--errata", help="relabel the official pairs listed in this csv")
    args = ap.parse_args()
    dlib, sface, ids, folds, official = load(args.pairs, args.cache, args.errata)
    P = all_pairs(dlib, sface, ids, folds)
    print(f"{len(ids)} images, {int(P['same'].sum())} genuine and {int((~P['same']).sum())} impostor pairs; "
          f"target FMR {args.fmr}")
    tuned, logi = z_weight_tuned(args.fmr), logistic()
    variants = [
        Variant("dlib alone", single("dlib")),
        Variant("SFace alone", single("sface")),
        Variant("dlib alone, threshold from official impostors", single("dlib"), "official"),
        Variant("z-sum, threshold from official impostors", z_sum(), "official"),
        Variant("z-sum (impostor mean/std) [shipped]", z_sum()),
        Variant("z-sum, impostor-tail (top 1 %) mean/std", z_sum(stats="tail")),
        Variant("z-sum, pooled within-class std", z_sum(stats="pooled")),
        Variant("weighted z-sum, weight tuned on training folds", tuned),
        Variant("logistic regression on the z-scores", logi),
    ] + [Variant(f"weighted z-sum w_dlib={w}", z_sum(w=w)) for w in (0.4, 0.45, 0.55, 0.6)]
    for v in variants:
        mean, std, errs, cross = evaluate(P, official, dlib, sface, v, args.fmr)
        print(f"{v.name:55s} {mean:6.2f} ± {std:4.2f} %  errors {errs:3d}  held-out cross FMR {cross:.4f} %")
    for coverage in (0.9, 0.95, 0.99, 0.999, 1.0):
        mean, std, errs, cross, share = evaluate_cascade(P, official, dlib, sface, coverage, args.fmr)
        print(f"{'cascade, band coverage ' + str(coverage):55s} {mean:6.2f} ± {std:4.2f} %  errors {errs:3d}  "
              f"held-out cross FMR {cross:.4f} %  reached SFace {share:.1f} %")
    print("tuned weights per fold:", [round(float(w), 3) for w in tuned.chosen])
    print("logistic dlib weight share per fold:", [round(float(w), 3) for w in logi.weights])


if __name__ == "__main__":
    main()
