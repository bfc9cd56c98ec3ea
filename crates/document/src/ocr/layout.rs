//! The choice of layout: detected boxes grouped into text rows, then the consecutive recognized
//! rows that parse as an MRZ (TD1, TD2 or TD3), fitted to its line length and ranked.

use chrono::NaiveDate;

use super::geometry::{RotRect, angle_diff, normalize_angle};
use super::{MrzOutcome, MrzRead};
use crate::mrz::{self, MrzRecord};

/// Below this per-character probability a name character counts as uncertain.
const NAME_CHAR_MIN_PROBABILITY: f32 = 0.6;
const NAME_MEAN_MIN_PROBABILITY: f32 = 0.9;

/// One recognized row.
#[derive(Clone, Debug)]
pub(super) struct RowText {
    pub(super) text: String,
    pub(super) probs: Vec<f32>,
    /// Position across the text direction (top to bottom).
    pub(super) across: f32,
    pub(super) h: f32,
    pub(super) rect: RotRect,
}

/// Merges boxes that continue each other along the same text line.
pub(super) fn group_rows(boxes: &[RotRect]) -> Vec<RotRect> {
    let n = boxes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while p[r] != r {
            r = p[r];
        }
        let mut i = i;
        while p[i] != r {
            let next = p[i];
            p[i] = r;
            i = next;
        }
        r
    }
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&boxes[i], &boxes[j]);
            let (big, small) = if a.len >= b.len { (a, b) } else { (b, a) };
            let h = big.h.max(small.h);
            if big.h.min(small.h) < 0.5 * h {
                continue;
            }
            // Orientation of a short box is unreliable: only compare when both are elongated.
            if small.len > 2.0 * small.h && angle_diff(big.angle, small.angle) > 0.2 {
                continue;
            }
            let (ux, uy) = big.dir();
            let (dx, dy) = (small.cx - big.cx, small.cy - big.cy);
            let along = (dx * ux + dy * uy).abs();
            let across = (-dx * uy + dy * ux).abs();
            let gap = along - (big.len + small.len) / 2.0;
            if across < 0.35 * h && gap < 1.2 * h {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups
        .values()
        .map(|members| {
            if members.len() == 1 {
                return boxes[members[0]];
            }
            // Direction of the group: length-weighted over its members (relative to the longest).
            let longest =
                members.iter().map(|&i| boxes[i]).max_by(|a, b| a.len.total_cmp(&b.len)).unwrap_or(boxes[0]);
            let (mut sx, mut sy) = (0.0f32, 0.0f32);
            for &i in members {
                let (mut ux, mut uy) = boxes[i].dir();
                if ux * longest.dir().0 + uy * longest.dir().1 < 0.0 {
                    ux = -ux;
                    uy = -uy;
                }
                sx += ux * boxes[i].len;
                sy += uy * boxes[i].len;
            }
            let angle = normalize_angle(sy.atan2(sx));
            let (ux, uy) = (angle.cos(), angle.sin());
            let (mut umin, mut umax, mut vmin, mut vmax) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
            let mut hs = Vec::new();
            for &i in members {
                hs.push(boxes[i].h);
                for (x, y) in boxes[i].corners() {
                    let u = x * ux + y * uy;
                    let v = -x * uy + y * ux;
                    umin = umin.min(u);
                    umax = umax.max(u);
                    vmin = vmin.min(v);
                    vmax = vmax.max(v);
                }
            }
            let (uc, vc) = ((umin + umax) / 2.0, (vmin + vmax) / 2.0);
            // Height: the members' median, not the union (small skew would inflate it).
            hs.sort_by(f32::total_cmp);
            RotRect {
                cx: uc * ux - vc * uy,
                cy: uc * uy + vc * ux,
                len: umax - umin,
                h: hs[hs.len() / 2].max(1.0).min(vmax - vmin),
                angle,
            }
        })
        .collect()
}

/// Pads or trims a read line to `target` characters by growing or shrinking its longest run of
/// fillers (where miscounts happen). `None` if the line is too far off.
pub(super) fn fit_line(text: &str, probs: &[f32], target: usize) -> Option<(String, Vec<f32>)> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n.abs_diff(target) > 4 || n == 0 {
        return None;
    }
    // Longest run of '<'.
    let (mut best_start, mut best_len, mut i) = (n, 0usize, 0usize);
    while i < n {
        if chars[i] == '<' {
            let s = i;
            while i < n && chars[i] == '<' {
                i += 1;
            }
            if i - s >= best_len {
                best_start = s;
                best_len = i - s;
            }
        } else {
            i += 1;
        }
    }
    let mut c = chars;
    let mut p = probs.to_vec();
    if n > target {
        let excess = n - target;
        // The probability 0.0 marks where the line was changed (see `name_uncertain`).
        if best_len < excess + 1 {
            // Extra characters at the end (e.g. noise after the line) are cut.
            c.truncate(target);
            p.truncate(target);
            if let Some(last) = p.last_mut() {
                *last = 0.0;
            }
        } else {
            c.drain(best_start..best_start + excess);
            p.drain(best_start..best_start + excess);
            if let Some(at) = p.get_mut(best_start.min(target.saturating_sub(1))) {
                *at = 0.0;
            }
        }
    } else if n < target {
        let missing = target - n;
        let at = if best_len >= 2 { best_start } else { n };
        for _ in 0..missing {
            c.insert(at, '<');
            // Never read: marks the line as padded (see `name_uncertain`).
            p.insert(at, 0.0);
        }
    }
    Some((c.into_iter().collect(), p))
}

/// Picks 2 or 3 consecutive rows that parse as an MRZ, preferring the most valid check digits.
pub(super) fn choose_mrz(mut rows: Vec<RowText>, today: NaiveDate) -> MrzOutcome {
    rows.retain(|r| r.text.len() >= 20);
    let mrz_like = rows.iter().any(|r| r.text.matches('<').count() >= 3);
    rows.sort_by(|a, b| a.across.total_cmp(&b.across));
    let mut best: Option<MrzRead> = None;
    for (count, target) in [(2usize, 44usize), (2, 36), (3, 30)] {
        if rows.len() < count {
            continue;
        }
        for start in 0..=rows.len() - count {
            let group = &rows[start..start + count];
            // Consecutive lines of one MRZ are close to each other.
            let h = group.iter().map(|r| r.h).fold(0.0, f32::max);
            if group.windows(2).any(|w| (w[1].across - w[0].across) > 3.0 * h) {
                continue;
            }
            let fitted: Option<Vec<(String, Vec<f32>)>> =
                group.iter().map(|r| fit_line(&r.text, &r.probs, target)).collect();
            let Some(fitted) = fitted else { continue };
            let rects = group.iter().map(|r| r.rect).collect();
            let Some(read) = evaluate(fitted, rects, today) else { continue };
            if is_better(&read, best.as_ref()) {
                best = Some(read);
            }
        }
    }
    match best {
        Some(read) => MrzOutcome::Found(Box::new(read)),
        None if mrz_like => MrzOutcome::Unreadable,
        None => MrzOutcome::None,
    }
}

/// Every check digit passes and the name is trusted: no need to look further.
pub(super) fn is_conclusive(outcome: &MrzOutcome) -> bool {
    matches!(outcome, MrzOutcome::Found(r) if r.record.all_check_digits_pass() && !r.name_uncertain)
}

pub(super) fn better_outcome(a: MrzOutcome, b: MrzOutcome) -> MrzOutcome {
    match (a, b) {
        (MrzOutcome::Found(x), MrzOutcome::Found(y)) => {
            // Prefer the read that vouches for its name, then the usual ranking.
            let y_wins = (!y.name_uncertain && x.name_uncertain && passed_count(&y) >= passed_count(&x))
                || (y.name_uncertain == x.name_uncertain && is_better(&y, Some(&x)));
            MrzOutcome::Found(if y_wins { y } else { x })
        }
        (found @ MrzOutcome::Found(_), _) | (_, found @ MrzOutcome::Found(_)) => found,
        (MrzOutcome::Unreadable, _) | (_, MrzOutcome::Unreadable) => MrzOutcome::Unreadable,
        _ => MrzOutcome::None,
    }
}

pub(super) fn passed_count(read: &MrzRead) -> usize {
    read.record.check_digits.iter().filter(|c| c.passed).count()
}

/// More valid check digits first, then the higher recognizer probability.
pub(super) fn is_better(read: &MrzRead, than: Option<&MrzRead>) -> bool {
    match than {
        None => true,
        Some(b) => {
            let (p, bp) = (passed_count(read), passed_count(b));
            p > bp || (p == bp && read.mean_probability > b.mean_probability)
        }
    }
}

/// Parses fitted lines into a read; `None` if the layout does not parse or no check digit passes
/// (then the rows are most likely not an MRZ).
pub(super) fn evaluate(
    mut fitted: Vec<(String, Vec<f32>)>,
    line_rects: Vec<RotRect>,
    today: NaiveDate,
) -> Option<MrzRead> {
    let (name_line, name_start) = if fitted.len() == 3 { (2, 0) } else { (0, 5) };
    if let Some((text, probs)) = fitted.get_mut(name_line) {
        clear_after_name(text, probs, name_start);
    }
    let lines: Vec<&str> = fitted.iter().map(|(t, _)| t.as_str()).collect();
    let record = mrz::parse(&lines, today).ok()?;
    if record.check_digits.iter().all(|c| !c.passed) {
        return None;
    }
    let all: Vec<f32> = fitted.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let mean_probability = all.iter().sum::<f32>() / all.len().max(1) as f32;
    let name_uncertain = name_uncertain(&record, &fitted);
    Some(MrzRead { record, mean_probability, name_uncertain, fitted, line_rects })
}

/// After the secondary identifier ends (`<<` following the first `<<`), ICAO allows only fillers:
/// weakly read characters there are crop-edge noise and become fillers.
pub(super) fn clear_after_name(text: &mut String, probs: &[f32], start: usize) {
    let mut chars: Vec<char> = text.chars().collect();
    let name: String = chars.iter().skip(start).collect();
    let Some(first_sep) = name.find("<<") else { return };
    let Some(end) = name[first_sep + 2..].find("<<").map(|i| start + first_sep + 2 + i) else { return };
    let mut changed = false;
    for (i, c) in chars.iter_mut().enumerate().skip(end) {
        if *c != '<' && probs.get(i).is_some_and(|&p| p < 0.5) {
            *c = '<';
            changed = true;
        }
    }
    if changed {
        *text = chars.into_iter().collect();
    }
}

/// The name has no check digit: flag it when any of its characters was read with low probability.
fn name_uncertain(record: &MrzRecord, fitted: &[(String, Vec<f32>)]) -> bool {
    let (line, start, end) = record.name_span;
    let Some((text, probs)) = fitted.get(line) else { return true };
    let chars: Vec<char> = text.chars().collect();
    // Up to the last letter of the name: trailing fillers do not matter.
    let last = (start..end.min(chars.len())).rev().find(|&i| chars[i] != '<');
    let Some(last) = last else { return true };
    let name_probs = &probs[start..=last];
    // A name line that had to be padded or trimmed lost or gained characters somewhere (a doubled
    // letter merged by CTC, a glyph read twice): its name cannot be trusted from this read alone.
    if probs.contains(&0.0) {
        return true;
    }
    let min = name_probs.iter().copied().fold(1.0, f32::min);
    let mean = name_probs.iter().sum::<f32>() / name_probs.len() as f32;
    min < NAME_CHAR_MIN_PROBABILITY || mean < NAME_MEAN_MIN_PROBABILITY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_line_adjusts_longest_filler_run() {
        let (t, p) = fit_line("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<", &[1.0; 42], 44).unwrap();
        assert_eq!(t, "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<");
        assert_eq!(p.len(), 44);
        let (t, _) = fit_line("L898902C36UTO7408122F1204159ZE184226B<<<<<<<10", &[1.0; 46], 44).unwrap();
        assert_eq!(t, "L898902C36UTO7408122F1204159ZE184226B<<<<<10");
        assert!(fit_line("SHORT", &[1.0; 5], 44).is_none());
        // Exact length: untouched. Padded or trimmed: the change is marked with probability 0.
        let (_, p) = fit_line("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", &[0.9; 44], 44).unwrap();
        assert!(!p.contains(&0.0));
        let (_, p) = fit_line("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<", &[0.9; 42], 44).unwrap();
        assert_eq!(p.iter().filter(|&&x| x == 0.0).count(), 2);
        let (_, p) = fit_line("L898902C36UTO7408122F1204159ZE184226B<<<<<<<10", &[0.9; 46], 44).unwrap();
        assert!(p.contains(&0.0));
    }

    #[test]
    fn weak_characters_after_the_name_become_fillers() {
        let mut text = "P<AUSCITIZEN<<JANE<<<<<<<<<<<<<<<<<<<<<<<<<E".to_string();
        let mut probs = vec![0.99; 44];
        probs[43] = 0.3;
        clear_after_name(&mut text, &probs, 5);
        assert_eq!(text, "P<AUSCITIZEN<<JANE<<<<<<<<<<<<<<<<<<<<<<<<<<");
        // A confidently read character is kept (and the check digits / name test must judge it).
        let mut text = "P<AUSCITIZEN<<JANE<<<<<<<<<<<<<<<<<<<<<<<<<E".to_string();
        clear_after_name(&mut text, &[0.99; 44], 5);
        assert!(text.ends_with('E'));
    }

    fn fake_read(expiry_check: char, name_uncertain: bool) -> MrzOutcome {
        let line2 = format!("L898902C36UTO7408122F120415{expiry_check}ZE184226B<<<<<10");
        let record =
            mrz::parse(&["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", &line2], NaiveDate::MIN).unwrap();
        MrzOutcome::Found(Box::new(MrzRead {
            record,
            mean_probability: 0.9,
            name_uncertain,
            fitted: Vec::new(),
            line_rects: Vec::new(),
        }))
    }

    #[test]
    fn outcomes_rank_valid_and_trusted_reads_first() {
        let valid = || fake_read('9', false);
        let failing = || fake_read('8', false);
        assert!(is_conclusive(&valid()));
        assert!(!is_conclusive(&failing()));
        assert!(!is_conclusive(&fake_read('9', true)));
        let pick = |a, b| match better_outcome(a, b) {
            MrzOutcome::Found(r) => (r.record.all_check_digits_pass(), r.name_uncertain),
            _ => panic!("expected a read"),
        };
        assert_eq!(pick(failing(), valid()), (true, false));
        assert_eq!(pick(valid(), failing()), (true, false));
        assert_eq!(pick(fake_read('9', true), valid()), (true, false));
        assert!(matches!(better_outcome(MrzOutcome::None, MrzOutcome::Unreadable), MrzOutcome::Unreadable));
        assert!(matches!(better_outcome(MrzOutcome::None, valid()), MrzOutcome::Found(_)));
    }

    #[test]
    fn group_rows_joins_pieces_of_one_line() {
        let a = RotRect { cx: 50.0, cy: 20.0, len: 80.0, h: 10.0, angle: 0.0 };
        let b = RotRect { cx: 150.0, cy: 21.0, len: 100.0, h: 10.0, angle: 0.01 };
        let c = RotRect { cx: 100.0, cy: 40.0, len: 180.0, h: 10.0, angle: 0.0 };
        let rows = group_rows(&[a, b, c]);
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().any(|r| r.len > 185.0 && r.len < 215.0));
    }
}
