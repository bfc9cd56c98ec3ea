//! Reading rows of one page: crops cut from the full-resolution page, recognized with greedy CTC
//! decoding, and the second reads (other crops, neighbour lines) when the first ones fall short.

use chrono::NaiveDate;
use idverify_onnx::SessionPool;
use idverify_onnx::ort::value::Tensor;
use image::RgbImage;

use super::geometry::{RotRect, is_long_row, same_row};
use super::layout::{
    RowText, choose_mrz, clear_after_name, evaluate, fit_line, group_rows, is_better, passed_count,
};
use super::{MAX_ROW_ANGLE, MrzOutcome, MrzRead, MrzReader, cpu_timed, planar};
use crate::DocumentError;
use crate::mrz;

pub(crate) const REC_HEIGHT: u32 = 48;
/// Widest crop given to the recognizer.
pub(super) const MAX_CROP_WIDTH: u32 = 2400;
/// Widest crop of an MRZ row. The recognizer gives one CTC step per 8 columns, and a run of `n`
/// fillers needs `2n - 1` steps (a blank between repeats): 840 columns are 105 steps, 2.4 per
/// character of a 44-character line. Rows wider than this only cost more (the recognizer's time
/// grows with the width): on the MRZ dev set the cap cut the median scan CPU by about a sixth with
/// every read unchanged, and reads first changed at 700 (BENCHMARKS.md, session 8).
pub(crate) const MRZ_MAX_CROP_WIDTH: u32 = 840;
const _: () = assert!(MRZ_MAX_CROP_WIDTH / 8 >= 2 * 44 - 1, "a line of 44 fillers must fit");
/// At most this many rows are recognized per orientation (the longest ones).
const MAX_ROWS: usize = 8;
/// Line pitches (in row heights) tried when looking for a missing neighbour line.
const SIBLING_PITCHES: [f32; 4] = [1.1, 1.35, 1.6, 1.9];

/// A page in one orientation and the rows already recognized on it.
pub(super) struct PageRows<'a> {
    pub(super) page: &'a RgbImage,
    pub(super) rows: &'a mut Vec<ReadRow>,
}

/// A recognized crop: where it was taken, the text and the per-character probabilities.
pub(super) type ReadRow = (RotRect, String, Vec<f32>);

impl MrzReader {
    /// One detector pass, with the second reads for failing check digits and uncertain names.
    pub(super) fn read_checked(
        &self,
        pr: &mut PageRows,
        today: NaiveDate,
        boxes: &[RotRect],
    ) -> Result<MrzOutcome, DocumentError> {
        Ok(match self.read_upright(pr, today, boxes)? {
            MrzOutcome::Found(mut read) => {
                if !read.record.all_check_digits_pass() {
                    self.reread_lines(pr, &mut read, today)?;
                }
                if read.name_uncertain {
                    self.confirm_name(pr, &mut read, today)?;
                }
                MrzOutcome::Found(read)
            }
            other => other,
        })
    }

    /// When a check digit fails, every line is read again from two other crops and the combination
    /// of reads with the most valid check digits is kept (a misread glyph often reads right from a
    /// slightly different crop; nothing is ever changed to fit a check digit).
    fn reread_lines(
        &self,
        pr: &mut PageRows,
        read: &mut MrzRead,
        today: NaiveDate,
    ) -> Result<(), DocumentError> {
        let target = read.fitted.first().map_or(0, |(t, _)| t.len());
        let mut options: Vec<Vec<(String, Vec<f32>)>> = Vec::new();
        for (i, rect) in read.line_rects.iter().enumerate() {
            let mut line_options = vec![read.fitted[i].clone()];
            for variant in crop_variants(rect) {
                let (text, probs) = self.read_rect(pr, &variant)?;
                if let Some(f) = fit_line(&text, &probs, target) {
                    line_options.push(f);
                }
            }
            options.push(line_options);
        }
        // Every combination of per-line reads (at most 3^3).
        let mut best: Option<MrzRead> = None;
        let mut index = vec![0usize; options.len()];
        loop {
            let fitted: Vec<(String, Vec<f32>)> =
                index.iter().enumerate().map(|(line, &k)| options[line][k].clone()).collect();
            if let Some(candidate) = evaluate(fitted, read.line_rects.clone(), today)
                && is_better(&candidate, best.as_ref())
            {
                best = Some(candidate);
            }
            let mut line = 0;
            while line < index.len() {
                index[line] += 1;
                if index[line] < options[line].len() {
                    break;
                }
                index[line] = 0;
                line += 1;
            }
            if line == index.len() {
                break;
            }
        }
        if let Some(better) = best
            && passed_count(&better) > passed_count(read)
        {
            *read = better;
        }
        Ok(())
    }

    /// A name read with low probability is read again from slightly different crops; when a second
    /// read spells the same name, the name is no longer considered uncertain. The first second read
    /// covers only the start of the line up to just after the name (cheaper: the recognizer's cost
    /// grows with the crop's width); the whole line is read again only when that does not agree.
    fn confirm_name(
        &self,
        pr: &mut PageRows,
        read: &mut MrzRead,
        today: NaiveDate,
    ) -> Result<(), DocumentError> {
        let (line, start, end) = read.record.name_span;
        let Some(&rect) = read.line_rects.get(line) else { return Ok(()) };
        let Some(original) = read.record.lines.get(line) else { return Ok(()) };
        let target = original.len();
        let chars: Vec<char> = original.chars().collect();
        let same_name = |text: String| {
            let mut lines = read.record.lines.clone();
            lines[line] = text;
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            mrz::parse(&refs, today).is_ok_and(|again| {
                again.surname == read.record.surname && again.given_names == read.record.given_names
            })
        };
        // The line start up to two characters past the name's last letter, plus a margin.
        if let Some(last) = (start..end.min(chars.len())).rev().find(|&i| chars[i] != '<')
            && last + 3 + 4 < target
        {
            let head = RotRect { h: rect.h * 1.2, ..rect };
            let len = (rect.len * (last + 3) as f32 / target as f32 + rect.h).min(rect.len);
            let (ux, uy) = rect.dir();
            let shift = (rect.len - len) / 2.0;
            let head = RotRect { cx: rect.cx - ux * shift, cy: rect.cy - uy * shift, len, ..head };
            let (text, _) = self.read_rect(pr, &head)?;
            let text: Vec<char> = text.trim_end_matches('<').chars().collect();
            // Same number of characters up to the name's end: the read lines up with the first.
            if text.len() == last + 1 {
                let line_text: String = text.iter().chain(chars[last + 1..].iter()).collect();
                if same_name(line_text) {
                    read.name_uncertain = false;
                    return Ok(());
                }
            }
        }
        let variants =
            [RotRect { h: rect.h * 1.2, ..rect }, RotRect { h: rect.h * 0.9, len: rect.len * 1.03, ..rect }];
        for variant in variants {
            let (text, probs) = self.read_rect(pr, &variant)?;
            let Some((mut text, probs)) = fit_line(&text, &probs, target) else { continue };
            if probs.contains(&0.0) {
                // A padded or trimmed read cannot vouch for the name either.
                continue;
            }
            clear_after_name(&mut text, &probs, start);
            if same_name(text) {
                read.name_uncertain = false;
                return Ok(());
            }
        }
        Ok(())
    }

    fn read_upright(
        &self,
        pr: &mut PageRows,
        today: NaiveDate,
        boxes: &[RotRect],
    ) -> Result<MrzOutcome, DocumentError> {
        let rows = group_rows(boxes);
        // A steep row is read in the quarter turn where it is closer to horizontal.
        let mut candidates: Vec<RotRect> =
            rows.into_iter().filter(|r| is_long_row(r) && r.angle.abs() <= MAX_ROW_ANGLE).collect();
        candidates.sort_by(|a, b| b.len.total_cmp(&a.len));
        candidates.truncate(MAX_ROWS);
        // The MRZ is at the bottom of the page: among the long rows, read the lowest first.
        let longest = candidates.first().map_or(0.0, |r| r.len);
        let across = |r: &RotRect| r.cy * r.dir().0 - r.cx * r.dir().1;
        candidates.sort_by(|a, b| {
            let (la, lb) = (a.len >= 0.6 * longest, b.len >= 0.6 * longest);
            lb.cmp(&la)
                .then_with(|| if la { across(b).total_cmp(&across(a)) } else { b.len.total_cmp(&a.len) })
        });
        if candidates.is_empty() {
            return Ok(MrzOutcome::None);
        }
        let mut texts = Vec::new();
        for (k, rect) in candidates.iter().enumerate() {
            // MRZ rows are usually the longest: stop as soon as a fully valid MRZ is in hand.
            if k >= 2
                && let MrzOutcome::Found(read) = choose_mrz(texts.clone(), today)
                && read.record.all_check_digits_pass()
            {
                return Ok(MrzOutcome::Found(read));
            }
            let (text, probs) = self.read_rect(pr, rect)?;
            let (nx, ny) = (-rect.dir().1, rect.dir().0);
            texts.push(RowText { text, probs, across: rect.cx * nx + rect.cy * ny, h: rect.h, rect: *rect });
        }
        let outcome = choose_mrz(texts.clone(), today);
        if matches!(outcome, MrzOutcome::Found(_)) {
            return Ok(outcome);
        }
        self.read_siblings(pr, texts, today).map(|found| found.unwrap_or(outcome))
    }

    /// Fallback when only one line of a two-line MRZ was detected (a stamp over the other, or the
    /// detector split it): read the places just above and below a line-sized row at a few plausible
    /// line pitches, and let the layout and check digits decide.
    fn read_siblings(
        &self,
        pr: &mut PageRows,
        mut texts: Vec<RowText>,
        today: NaiveDate,
    ) -> Result<Option<MrzOutcome>, DocumentError> {
        let mut seeds: Vec<RowText> = texts
            .iter()
            .filter(|r| {
                let n = r.text.chars().count();
                (n.abs_diff(44) <= 2 || n.abs_diff(36) <= 2) && r.text.matches('<').count() >= 2
            })
            .cloned()
            .collect();
        seeds.sort_by_key(|r| std::cmp::Reverse(r.text.len()));
        for seed in seeds.iter().take(2) {
            let r = seed.rect;
            let (nx, ny) = (-r.dir().1, r.dir().0);
            for direction in [-1.0f32, 1.0] {
                for pitch in SIBLING_PITCHES {
                    let offset = direction * pitch * r.h;
                    let rect = RotRect { cx: r.cx + nx * offset, cy: r.cy + ny * offset, ..r };
                    let (text, probs) = self.read_rect(pr, &rect)?;
                    texts.push(RowText { text, probs, across: rect.cx * nx + rect.cy * ny, h: rect.h, rect });
                }
            }
            if let found @ MrzOutcome::Found(_) = choose_mrz(texts.clone(), today) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Recognizes the row `rect` of the page, or returns the earlier read of (almost) the same row.
    fn read_rect(&self, pr: &mut PageRows, rect: &RotRect) -> Result<(String, Vec<f32>), DocumentError> {
        if let Some((_, text, probs)) = pr.rows.iter().find(|(r, _, _)| same_row(r, rect)) {
            return Ok((text.clone(), probs.clone()));
        }
        let (text, probs) = self.recognize(&crop_rect(pr.page, rect, MRZ_MAX_CROP_WIDTH))?;
        pr.rows.push((*rect, text.clone(), probs.clone()));
        Ok((text, probs))
    }

    /// Greedy CTC decoding restricted to the MRZ alphabet; returns text and per-character probability.
    pub(super) fn recognize(&self, crop: &RgbImage) -> Result<(String, Vec<f32>), DocumentError> {
        let (steps, classes, data) = self.run_recognizer(&self.rec, crop)?;
        if classes != self.num_classes {
            return Err(DocumentError::Inference(format!(
                "recognizer has {classes} classes, dictionary {}",
                self.num_classes
            )));
        }
        Ok(ctc_greedy(&data, steps, classes, &self.mrz_classes))
    }

    /// One recognizer run on a line crop: (time steps, classes, probabilities).
    pub(super) fn run_recognizer(
        &self,
        pool: &SessionPool,
        crop: &RgbImage,
    ) -> Result<(usize, usize, Vec<f32>), DocumentError> {
        // BGR order, (x/255 - 0.5) / 0.5
        let input = planar(crop, |_, v| v as f32 / 127.5 - 1.0, true)?;
        let (result, cpu_us) = cpu_timed(|| {
            pool.with(|s| -> Result<(usize, usize, Vec<f32>), DocumentError> {
                let outputs = s.run(idverify_onnx::ort::inputs![Tensor::from_array(input)?])?;
                let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
                if shape.len() != 3 {
                    return Err(DocumentError::Inference(format!(
                        "unexpected recognizer output shape {shape:?}"
                    )));
                }
                Ok((shape[1] as usize, shape[2] as usize, data.to_vec()))
            })
        });
        self.runs.count_recognizer(u64::from(crop.width()), cpu_us);
        result
    }
}

/// Greedy CTC decoding over the `allowed` classes (class index, character); class 0 is the blank.
/// Returns the text and each character's probability (its best time step).
pub(super) fn ctc_greedy(
    data: &[f32],
    steps: usize,
    classes: usize,
    allowed: &[(usize, char)],
) -> (String, Vec<f32>) {
    let mut text = String::new();
    let mut probs = Vec::new();
    let mut prev: Option<usize> = None;
    for t in 0..steps {
        let row = &data[t * classes..(t + 1) * classes];
        let mut best = (0usize, row[0]);
        for &(i, _) in allowed {
            if row[i] > best.1 {
                best = (i, row[i]);
            }
        }
        if best.0 == 0 {
            prev = None;
            continue;
        }
        if prev == Some(best.0) {
            if let Some(p) = probs.last_mut() {
                *p = f32::max(*p, best.1);
            }
            continue;
        }
        prev = Some(best.0);
        let c = allowed.iter().find(|(i, _)| *i == best.0).map(|(_, c)| *c).unwrap_or('<');
        text.push(c);
        probs.push(best.1);
    }
    (text, probs)
}

/// Two slightly different crops of a row, for second reads.
fn crop_variants(rect: &RotRect) -> [RotRect; 2] {
    [RotRect { h: rect.h * 1.2, ..*rect }, RotRect { h: rect.h * 0.9, len: rect.len * 1.03, ..*rect }]
}

/// Samples the rectangle from the page into an upright crop of height `REC_HEIGHT` (bilinear), at
/// most `max_width` wide (a wider row is squeezed along its length).
pub(super) fn crop_rect(page: &RgbImage, r: &RotRect, max_width: u32) -> RgbImage {
    let out_h = REC_HEIGHT;
    let out_w = ((REC_HEIGHT as f32 * r.len / r.h.max(1.0)).round() as u32).clamp(REC_HEIGHT, max_width);
    let (ux, uy) = r.dir();
    let (vx, vy) = (-uy, ux);
    let (pw, ph) = (page.width() as f32, page.height() as f32);
    let mut out = RgbImage::new(out_w, out_h);
    for oy in 0..out_h {
        let v = ((oy as f32 + 0.5) / out_h as f32 - 0.5) * r.h;
        for ox in 0..out_w {
            let u = ((ox as f32 + 0.5) / out_w as f32 - 0.5) * r.len;
            let x = (r.cx + u * ux + v * vx - 0.5).clamp(0.0, pw - 1.0);
            let y = (r.cy + u * uy + v * vy - 0.5).clamp(0.0, ph - 1.0);
            let (x0, y0) = (x.floor() as u32, y.floor() as u32);
            let (x1, y1) = ((x0 + 1).min(page.width() - 1), (y0 + 1).min(page.height() - 1));
            let (fx, fy) = (x - x0 as f32, y - y0 as f32);
            let (p00, p10, p01, p11) = (
                page.get_pixel(x0, y0).0,
                page.get_pixel(x1, y0).0,
                page.get_pixel(x0, y1).0,
                page.get_pixel(x1, y1).0,
            );
            let mut px = [0u8; 3];
            for c in 0..3 {
                let top = p00[c] as f32 * (1.0 - fx) + p10[c] as f32 * fx;
                let bottom = p01[c] as f32 * (1.0 - fx) + p11[c] as f32 * fx;
                px[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(ox, oy, image::Rgb(px));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrz_crops_are_capped_and_card_crops_are_not() {
        let page = RgbImage::new(1600, 1200);
        let long_row = RotRect { cx: 800.0, cy: 1000.0, len: 1500.0, h: 60.0, angle: 0.0 };
        // 48 * 1500 / 60 = 1200 columns: squeezed to the cap for the MRZ, kept for the visual zone.
        assert_eq!(
            crop_rect(&page, &long_row, MRZ_MAX_CROP_WIDTH).dimensions(),
            (MRZ_MAX_CROP_WIDTH, REC_HEIGHT)
        );
        assert_eq!(crop_rect(&page, &long_row, MAX_CROP_WIDTH).dimensions(), (1200, REC_HEIGHT));
        let short_row = RotRect { len: 600.0, ..long_row };
        assert_eq!(crop_rect(&page, &short_row, MRZ_MAX_CROP_WIDTH).width(), 480);
    }
}
