#!/usr/bin/env python3
"""Cohort score normalisation (adaptive s-norm) before the dlib + SFace z-sum, under the 5-fold
protocol of `scripts/face_fusion_variants.py` (whose loader and threshold rule it uses).

For each held-out fold, an image's statistics are the mean and standard deviation of its K highest
cosines against the other folds' images of other people (K = 0: all of them); a pair's cosine is
normalised by both images' statistics, for dlib, SFace or both, and the z-sum's parameters and
threshold (FMR 1e-3) are fitted on the other folds' pairs. Prints one line per K and variant:
accuracy on the fold's official pairs, errors, held-out cross-identity FMR.

  python3 scripts/face_snorm_variants.py PAIRS.csv CACHE.json [K,K,...]

Needs numpy. Tried for issue 15 and not shipped (BENCHMARKS.md, session 9).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import face_fusion_variants as F  # noqa: E402


def main():
    pairs, cache = sys.argv[1], sys.argv[2]
    ks = [int(k) for k in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 50, 300, 1000]
    fmr = 1e-3
    dlib, sface, ids, folds, official = F.load(pairs, cache)
    n = len(ids)
    sims = {"dlib": dlib @ dlib.T, "sface": sface @ sface.T}
    iu, ju = np.triu_indices(n, 1)
    keep = (ids[iu] != ids[ju]) | (folds[iu] == folds[ju])
    iu, ju = iu[keep], ju[keep]
    same = ids[iu] == ids[ju]
    fi, fj = folds[iu], folds[ju]

    def stats(S, cohort, k):
        mu, sd = np.zeros(n), np.zeros(n)
        for x in range(n):
            row = S[x, cohort & (ids != ids[x])]
            row = np.sort(row)[::-1][:k] if k else row
            mu[x], sd[x] = row.mean(), row.std()
        return mu, sd

    for k in ks:
        for normalised in (("dlib", "sface"), ("dlib",), ("sface",)):
            accs, errs, cross_acc, cross_n = [], 0, 0, 0
            for f in sorted(set(o[3] for o in official)):
                st = {m: stats(sims[m], folds != f, k) for m in normalised}

                def score(m, a, b):
                    s = sims[m][a, b]
                    if m not in st:
                        return s
                    mu, sd = st[m]
                    return 0.5 * ((s - mu[a]) / sd[a] + (s - mu[b]) / sd[b])

                train = (fi != f) & (fj != f)
                cd, cs = score("dlib", iu[train], ju[train]), score("sface", iu[train], ju[train])
                imp = ~same[train]
                dm, dsd = cd[imp].mean(), cd[imp].std(ddof=1)
                sm, ssd = cs[imp].mean(), cs[imp].std(ddof=1)

                def z(a, b):
                    return (score("dlib", a, b) - dm) / dsd + (score("sface", a, b) - sm) / ssd

                t = F.threshold(((cd - dm) / dsd + (cs - sm) / ssd)[imp], fmr)
                test = [o for o in official if o[3] == f]
                right = sum(
                    (False if a is None or b is None else bool(z(np.array([a]), np.array([b]))[0] >= t)) == s
                    for a, b, s, _ in test
                )
                accs.append(100.0 * right / len(test))
                errs += len(test) - right
                held = (fi == f) & (fj == f) & ~same
                cross_acc += int((z(iu[held], ju[held]) >= t).sum())
                cross_n += int(held.sum())
            print(f"K={k:5d} s-norm on {'+'.join(normalised):10s} {np.mean(accs):6.2f} ± {np.std(accs):4.2f} %  "
                  f"errors {errs:3d}  held-out cross FMR {100 * cross_acc / cross_n:.4f} %", flush=True)


if __name__ == "__main__":
    main()
