//! `idverify eval faces` with SFace loaded: the cascade's and the fused score's figures next to
//! dlib's, the share of pairs that reach SFace, the held-out-fold cascade (fusion refitted on the
//! other folds), and DET curves (FNMR against FMR, log scales) written as SVG by `--plot DIR`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::calibration::{Calibration, fit_from_distances};
use crate::eval::{AllPairScores, ScoredPairs};
use crate::fusion::{self, FUSION_FMRS, FusedOperatingPoint, Fusion, Recognizers};
use crate::{FaceEngine, FaceError};

/// Decisions of one system on a set of pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decisions {
    pub genuine: usize,
    pub impostor: usize,
    pub genuine_rejected: usize,
    pub impostors_accepted: usize,
    /// Pairs that needed SFace (genuine, impostor).
    pub reached_second: [usize; 2],
}

impl Decisions {
    pub fn accuracy(&self) -> f64 {
        let n = self.genuine + self.impostor;
        100.0 * (n - self.genuine_rejected - self.impostors_accepted) as f64 / n.max(1) as f64
    }
    pub fn fmr(&self) -> f64 {
        100.0 * self.impostors_accepted as f64 / self.impostor.max(1) as f64
    }
    pub fn fnmr(&self) -> f64 {
        100.0 * self.genuine_rejected as f64 / self.genuine.max(1) as f64
    }
    /// Percent of all pairs that reached SFace.
    pub fn reached_share(&self) -> f64 {
        let n = self.genuine + self.impostor;
        100.0 * (self.reached_second[0] + self.reached_second[1]) as f64 / n.max(1) as f64
    }
}

/// How a system decides a (dlib distance, SFace cosine) pair; NaN/∞ = face or embedding missing.
#[derive(Clone, Copy)]
pub struct Rule<'a> {
    pub mode: Recognizers,
    pub dlib_threshold: f32,
    pub fusion: &'a Fusion,
    pub point: FusedOperatingPoint,
}

impl Rule<'_> {
    fn decide(&self, d: f32, c: f32) -> (bool, bool) {
        if !d.is_finite() {
            return (false, false);
        }
        fusion::decide(self.mode, self.dlib_threshold, self.fusion, &self.point, d, || {
            c.is_finite().then_some(c)
        })
    }

    pub fn count(&self, genuine: &[(f32, f32)], impostor: &[(f32, f32)]) -> Decisions {
        let mut out = Decisions { genuine: genuine.len(), impostor: impostor.len(), ..Default::default() };
        for (pairs, class) in [(genuine, 0), (impostor, 1)] {
            for &(d, c) in pairs {
                let (matched, reached) = self.decide(d, c);
                out.reached_second[class] += reached as usize;
                if class == 0 && !matched {
                    out.genuine_rejected += 1;
                } else if class == 1 && matched {
                    out.impostors_accepted += 1;
                }
            }
        }
        out
    }
}

/// (dlib distance, SFace cosine) of each pair.
pub type BothScores = Vec<(f32, f32)>;

/// (dlib distance, SFace cosine) of the file's pairs by class (genuine, impostor); a missing face
/// gives (∞, NaN).
pub fn file_pairs(scored: &ScoredPairs, fold: Option<i64>) -> (BothScores, BothScores) {
    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    for p in scored.pairs.iter().filter(|p| fold.is_none() || p.fold == fold) {
        let v = (p.distance.unwrap_or(f32::INFINITY), p.second_cosine.unwrap_or(f32::NAN));
        if p.same { genuine.push(v) } else { impostor.push(v) }
    }
    (genuine, impostor)
}

/// FNMR at a log-spaced grid of FMRs for a dissimilarity score (lower = more alike; NaN counts as
/// never accepted). Returns (fmr, fnmr) points, both as fractions.
pub fn det_curve(genuine: &[f64], impostor: &[f64]) -> Vec<(f64, f64)> {
    let clean = |v: &[f64]| {
        let mut v: Vec<f64> = v.iter().map(|x| if x.is_nan() { f64::INFINITY } else { *x }).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (g, i) = (clean(genuine), clean(impostor));
    if g.is_empty() || i.is_empty() {
        return Vec::new();
    }
    let lowest = (1.0 / i.len() as f64).log10().ceil() as i32;
    let mut points = Vec::new();
    for step in (lowest * 10)..=0 {
        let fmr = 10f64.powf(step as f64 / 10.0);
        let k = ((fmr * i.len() as f64).floor() as usize).min(i.len() - 1);
        // Accept d < i[k]: at most k impostors.
        let accepted = g.partition_point(|&d| d < i[k]);
        points.push((k as f64 / i.len() as f64, 1.0 - accepted as f64 / g.len() as f64));
    }
    points.retain(|p| p.0 > 0.0);
    points
}

/// One curve of a DET plot: a name and (fmr, fnmr) points; `points_only` draws markers.
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub points_only: bool,
}

/// Writes a DET plot (log-log) as SVG.
pub fn write_det_svg(path: &Path, title: &str, curves: &[Curve], floor: f64) -> Result<(), FaceError> {
    use plotters::prelude::*;
    let err = |e: String| FaceError::Io(format!("{}: {e}", path.display()));
    let root = SVGBackend::new(path, (820, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let min_fmr = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)).fold(1.0, f64::min).max(1e-7);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((min_fmr..1.0).log_scale(), (floor..1.0).log_scale())
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("false-match rate (FMR)")
        .y_desc("false non-match rate (FNMR)")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let colours =
        [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
    for (curve, colour) in curves.iter().zip(colours.iter().cycle()) {
        let pts: Vec<(f64, f64)> = curve.points.iter().map(|&(x, y)| (x, y.max(floor))).collect();
        let style = ShapeStyle::from(*colour).stroke_width(2);
        let series = if curve.points_only {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, style.filled())))
        } else {
            chart.draw_series(LineSeries::new(pts, style))
        }
        .map_err(|e| err(e.to_string()))?;
        let c = *colour;
        series.label(curve.name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Held-out cascade decisions: on the folds' file pairs, on their cross-identity pairs, and the
/// accuracy per fold.
pub type HeldOut = (Decisions, Decisions, Vec<f64>);

/// The cascade's report for a scored file (SFace loaded, the calibration holds the fusion).
pub struct CascadeReport {
    pub mode: Recognizers,
    pub dlib: Decisions,
    pub fused: Decisions,
    pub cascade: Decisions,
    /// The configured mode's decisions (the last line's accuracy and FMR).
    pub configured: Decisions,
    /// On every pair of the file's images (with `--impostors all`).
    pub all: Option<[Decisions; 3]>,
    /// Held-out folds: cascade decisions on each fold's file pairs and cross-identity pairs with
    /// dlib's calibration and the fusion refitted on the other folds.
    pub held_out: Option<HeldOut>,
    /// The fused score as a dissimilarity (−s) on the file's pairs, for TAR / EER.
    pub fused_genuine: Vec<f64>,
    pub fused_impostor: Vec<f64>,
    pub second_cpu_ms: Vec<f64>,
}

fn rule<'a>(engine: &'a FaceEngine, mode: Recognizers) -> Option<Rule<'a>> {
    Some(Rule {
        mode,
        dlib_threshold: engine.model_info().threshold_distance,
        fusion: engine.calibration().fusion.as_ref()?,
        point: engine.fused_operating_point()?,
    })
}

pub fn report(
    engine: &FaceEngine,
    scored: &ScoredPairs,
    all: Option<&AllPairScores>,
    target_fmr: f64,
) -> Result<Option<CascadeReport>, FaceError> {
    let Some(cascade_rule) = rule(engine, Recognizers::Cascade) else { return Ok(None) };
    let fused_rule = Rule { mode: Recognizers::Fused, ..cascade_rule };
    let dlib_rule = Rule { mode: Recognizers::Dlib, ..cascade_rule };
    let (g, i) = file_pairs(scored, None);
    let configured_mode = engine.model_info().recognizers;
    let neg_fused = |v: &[(f32, f32)]| -> Vec<f64> {
        v.iter()
            .map(|&(d, c)| {
                if d.is_finite() && c.is_finite() { -cascade_rule.fusion.score(d, c) } else { f64::INFINITY }
            })
            .collect()
    };
    let all_figures = all.map(|a| {
        let (ag, ai) = (a.genuine_both(None), a.impostor_both(None));
        [dlib_rule.count(&ag, &ai), fused_rule.count(&ag, &ai), cascade_rule.count(&ag, &ai)]
    });
    let held_out = match all {
        Some(a) => held_out_cascade(scored, a, target_fmr)?,
        None => None,
    };
    Ok(Some(CascadeReport {
        mode: configured_mode,
        dlib: dlib_rule.count(&g, &i),
        fused: fused_rule.count(&g, &i),
        cascade: cascade_rule.count(&g, &i),
        configured: Rule { mode: configured_mode, ..cascade_rule }.count(&g, &i),
        all: all_figures,
        held_out,
        fused_genuine: neg_fused(&g),
        fused_impostor: neg_fused(&i),
        second_cpu_ms: scored.second_cpu_ms.clone(),
    }))
}

/// Per fold: dlib's calibration and the fusion fitted on the other folds' pairs, the cascade at
/// `target_fmr` on the fold's file pairs and on its cross-identity pairs.
fn held_out_cascade(
    scored: &ScoredPairs,
    all: &AllPairScores,
    target_fmr: f64,
) -> Result<Option<HeldOut>, FaceError> {
    let mut folds: Vec<i64> = scored.pairs.iter().filter_map(|p| p.fold).collect();
    folds.sort();
    folds.dedup();
    if folds.len() < 2 || scored.pairs.iter().any(|p| p.fold.is_none()) {
        return Ok(None);
    }
    let known = |v: Vec<(f32, f32)>| v.into_iter().filter(|p| p.1.is_finite()).collect::<Vec<_>>();
    let (mut pairs, mut cross, mut accs) = (Decisions::default(), Decisions::default(), Vec::new());
    for &f in &folds {
        let (tg, ti) = (known(all.genuine_both(Some(f))), known(all.impostor_both(Some(f))));
        let d = |v: &[(f32, f32)]| v.iter().map(|p| p.0 as f64).collect::<Vec<f64>>();
        let dlib: Calibration = fit_from_distances(&d(&tg), &d(&ti), "held-out", "dlib", "other folds")?;
        let fusion = fusion::fit(&tg, &ti, &dlib, "sface")?;
        let rule = Rule {
            mode: Recognizers::Cascade,
            dlib_threshold: dlib.threshold_for_fmr(target_fmr),
            fusion: &fusion,
            point: fusion.operating_point(target_fmr),
        };
        let (fg, fi) = file_pairs(scored, Some(f));
        let on_pairs = rule.count(&fg, &fi);
        accs.push(on_pairs.accuracy());
        let cross_impostors = {
            let s = all.impostor_second.get(&(Some(f), Some(f))).map(Vec::as_slice).unwrap_or(&[]);
            let d = all.impostor.get(&(Some(f), Some(f))).map(Vec::as_slice).unwrap_or(&[]);
            d.iter().zip(s).map(|(a, b)| (*a, *b)).collect::<Vec<_>>()
        };
        let on_cross = rule.count(&[], &cross_impostors);
        for (sum, part) in [(&mut pairs, on_pairs), (&mut cross, on_cross)] {
            sum.genuine += part.genuine;
            sum.impostor += part.impostor;
            sum.genuine_rejected += part.genuine_rejected;
            sum.impostors_accepted += part.impostors_accepted;
            sum.reached_second[0] += part.reached_second[0];
            sum.reached_second[1] += part.reached_second[1];
        }
    }
    Ok(Some((pairs, cross, accs)))
}

pub fn write_cascade(r: &CascadeReport, target_fmr: f64, out: &mut dyn Write) -> Result<(), FaceError> {
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    let line = |name: &str, d: &Decisions| {
        format!(
            "  {name}: accuracy {:.2} %, FMR {:.4} % ({} of {}), FNMR {:.2} % ({} of {}); reached SFace {:.2} % of pairs ({} genuine, {} impostor)",
            d.accuracy(),
            d.fmr(),
            d.impostors_accepted,
            d.impostor,
            d.fnmr(),
            d.genuine_rejected,
            d.genuine,
            d.reached_share(),
            d.reached_second[0],
            d.reached_second[1]
        )
    };
    writeln!(
        out,
        "recognizers at target FMR {target_fmr} (configured: {}), on the file's pairs:",
        r.mode.as_str()
    )
    .map_err(io)?;
    for (name, d) in [("dlib", &r.dlib), ("fused", &r.fused), ("cascade", &r.cascade)] {
        writeln!(out, "{}", line(name, d)).map_err(io)?;
    }
    if let Some(all) = &r.all {
        writeln!(out, "on every pair of the file's images:").map_err(io)?;
        for (name, d) in ["dlib", "fused", "cascade"].iter().zip(all) {
            writeln!(out, "{}", line(name, d)).map_err(io)?;
        }
    }
    if let Some((pairs, cross, accs)) = &r.held_out {
        let mean = accs.iter().sum::<f64>() / accs.len() as f64;
        let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64).sqrt();
        writeln!(
            out,
            "cascade {}-fold (dlib calibration and fusion fitted on the other folds' pairs): accuracy {mean:.2} ± {std:.2} %; realised FMR {:.3} % on the held-out pairs ({} of {}), {:.4} % on the held-out folds' cross-identity pairs ({} of {}); reached SFace {:.2} % of the held-out pairs",
            accs.len(),
            pairs.fmr(),
            pairs.impostors_accepted,
            pairs.impostor,
            cross.fmr(),
            cross.impostors_accepted,
            cross.impostor,
            pairs.reached_share()
        )
        .map_err(io)?;
    }
    if !r.second_cpu_ms.is_empty() {
        let mut v = r.second_cpu_ms.clone();
        v.sort_by(f64::total_cmp);
        writeln!(
            out,
            "SFace align + embed: median {:.1} CPU ms per face (p90 {:.1}; {} faces)",
            v[v.len() / 2],
            v[v.len() * 9 / 10],
            v.len()
        )
        .map_err(io)?;
    }
    Ok(())
}

/// DET curves of dlib, SFace and the fused score, and the cascade's operating points at the
/// fusion table's FMRs (realised), on every pair of the file's images when given, else on the
/// file's pairs. Returns the SVG's path.
pub fn plot(
    engine: &FaceEngine,
    scored: &ScoredPairs,
    all: Option<&AllPairScores>,
    dir: &Path,
    name: &str,
) -> Result<Option<PathBuf>, FaceError> {
    let Some(base) = rule(engine, Recognizers::Cascade) else { return Ok(None) };
    let (g, i) = match all {
        Some(a) => (a.genuine_both(None), a.impostor_both(None)),
        None => file_pairs(scored, None),
    };
    let nan_inf = |x: f64| if x.is_finite() { x } else { f64::INFINITY };
    let dlib = |v: &[(f32, f32)]| v.iter().map(|p| nan_inf(p.0 as f64)).collect::<Vec<f64>>();
    let sface = |v: &[(f32, f32)]| v.iter().map(|p| nan_inf(-(p.1 as f64))).collect::<Vec<f64>>();
    let fused = |v: &[(f32, f32)]| {
        v.iter()
            .map(
                |&(d, c)| {
                    if d.is_finite() && c.is_finite() { -base.fusion.score(d, c) } else { f64::INFINITY }
                },
            )
            .collect::<Vec<f64>>()
    };
    let cal = engine.calibration();
    let cascade_points: Vec<(f64, f64)> = FUSION_FMRS
        .iter()
        .filter(|&&fmr| base.fusion.table.iter().any(|p| p.fmr == fmr))
        .map(|&fmr| {
            let r = Rule {
                dlib_threshold: cal.threshold_for_fmr(fmr),
                point: base.fusion.operating_point(fmr),
                ..base
            };
            let d = r.count(&g, &i);
            (d.fmr() / 100.0, d.fnmr() / 100.0)
        })
        .filter(|p| p.0 > 0.0)
        .collect();
    let curves = [
        Curve { name: "dlib".into(), points: det_curve(&dlib(&g), &dlib(&i)), points_only: false },
        Curve { name: "SFace".into(), points: det_curve(&sface(&g), &sface(&i)), points_only: false },
        Curve {
            name: "fused (dlib + SFace)".into(),
            points: det_curve(&fused(&g), &fused(&i)),
            points_only: false,
        },
        Curve { name: "cascade (operating points)".into(), points: cascade_points, points_only: true },
    ];
    std::fs::create_dir_all(dir).map_err(|e| FaceError::Io(format!("{}: {e}", dir.display())))?;
    let path = dir.join(format!("det-{name}.svg"));
    let floor = (0.5 / g.len().max(1) as f64).min(1e-3);
    let title = format!("DET, {name}: {} genuine, {} impostor pairs", g.len(), i.len());
    write_det_svg(&path, &title, &curves, floor)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn det_curve_of_separable_scores_is_zero_fnmr() {
        let g = [0.1, 0.2, 0.3];
        let i: Vec<f64> = (0..100).map(|k| 0.5 + k as f64 * 0.01).collect();
        let det = det_curve(&g, &i);
        assert!(!det.is_empty() && det.iter().all(|p| p.1 == 0.0), "{det:?}");
        assert!((det[0].0 - 0.01).abs() < 1e-12, "{det:?}");
    }

    #[test]
    fn det_curve_counts_missing_faces_as_rejected() {
        let g = [0.1, f64::NAN];
        let i: Vec<f64> = (0..10).map(|k| 0.5 + k as f64 * 0.01).collect();
        assert!(det_curve(&g, &i).iter().all(|p| (p.1 - 0.5).abs() < 1e-12));
    }

    #[test]
    fn svg_plot_is_written() {
        let dir = std::env::temp_dir().join(format!("idverify-det-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("det.svg");
        let curves = [
            Curve {
                name: "a".into(),
                points: vec![(1e-3, 0.1), (1e-2, 0.05), (1e-1, 0.01)],
                points_only: false,
            },
            Curve { name: "b".into(), points: vec![(1e-3, 0.08)], points_only: true },
        ];
        write_det_svg(&path, "test", &curves, 1e-3).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("false-match rate") && svg.contains("<circle"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
