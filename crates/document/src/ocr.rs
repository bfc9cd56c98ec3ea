//! MRZ reading with PP-OCRv6 small: DB text detection on a reduced page, grouping of the detected
//! boxes into text rows along their own direction, CTC recognition of the long thin rows only
//! (cropped from the full-resolution page), then fitting to the ICAO layouts.

use chrono::NaiveDate;
use idverify_onnx::SessionPool;
use idverify_onnx::ort::value::Tensor;
use image::RgbImage;
use ndarray::Array4;

use crate::mrz::{self, MrzRecord};
use crate::{DocumentEngineConfig, DocumentError};

pub const DET_MODEL: &str = "PP-OCRv6_det_small.onnx";
/// The int8 build of `PP-OCRv6_rec_small.onnx` made by `scripts/quantize_rec.py`: convolutions
/// quantized, head cut to the CTC blank, the 37 MRZ characters and the space (so its softmax, and
/// every probability below, is over those classes only).
pub const REC_MODEL: &str = "PP-OCRv6_rec_small_int8.onnx";

/// Longest side of the page given to the detector (multiple of 32) in the quick first pass, and
/// in the full pass that runs when the quick one is not conclusive (small or skewed MRZ).
const DET_FAST_SIDE: u32 = 640;
const DET_MAX_SIDE: u32 = 960;
/// Small pages are upscaled so that MRZ characters stay detectable.
const DET_MIN_SIDE: u32 = 640;
const DB_THRESHOLD: f32 = 0.3;
const DB_BOX_THRESHOLD: f32 = 0.5;
const DB_UNCLIP_RATIO: f32 = 1.5;
const REC_HEIGHT: u32 = 48;
/// The first detector pass covers only this lower part of the upright page, where the MRZ is.
const BOTTOM_FRACTION: f32 = 0.5;
/// Rows steeper than this (radians) are read after a quarter turn of the page, not as they are.
const MAX_ROW_ANGLE: f32 = 0.8;
/// At most this many rows are recognized per orientation (the longest ones).
const MAX_ROWS: usize = 8;
/// Below this per-character probability a name character counts as uncertain.
const NAME_CHAR_MIN_PROBABILITY: f32 = 0.6;
const NAME_MEAN_MIN_PROBABILITY: f32 = 0.9;
/// Line pitches (in row heights) tried when looking for a missing neighbour line.
const SIBLING_PITCHES: [f32; 4] = [1.1, 1.35, 1.6, 1.9];

/// A successful MRZ read.
pub(crate) struct MrzRead {
    pub record: MrzRecord,
    /// Mean recognizer probability over the MRZ characters.
    pub mean_probability: f32,
    /// The name (no check digit) was read with low probability.
    pub name_uncertain: bool,
    /// The fitted lines with their per-character probabilities, and where each was read from.
    pub fitted: Vec<(String, Vec<f32>)>,
    pub line_rects: Vec<RotRect>,
}

pub(crate) enum MrzOutcome {
    Found(Box<MrzRead>),
    /// MRZ-like rows were seen, but no layout could be parsed from them.
    Unreadable,
    None,
}

pub(crate) struct MrzReader {
    det: SessionPool,
    rec: SessionPool,
    /// Recognizer classes allowed in an MRZ: (class index, character).
    mrz_classes: Vec<(usize, char)>,
    /// Number of recognizer classes (blank + dictionary + space).
    num_classes: usize,
}

/// A rotated rectangle in page coordinates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RotRect {
    pub cx: f32,
    pub cy: f32,
    /// Extent along the text direction.
    pub len: f32,
    /// Extent across the text direction.
    pub h: f32,
    /// Text direction, radians, in (-pi/2, pi/2].
    pub angle: f32,
}

impl RotRect {
    fn dir(&self) -> (f32, f32) {
        (self.angle.cos(), self.angle.sin())
    }
    fn corners(&self) -> [(f32, f32); 4] {
        let (ux, uy) = self.dir();
        let (vx, vy) = (-uy, ux);
        let (a, b) = (self.len / 2.0, self.h / 2.0);
        [
            (self.cx - ux * a - vx * b, self.cy - uy * a - vy * b),
            (self.cx + ux * a - vx * b, self.cy + uy * a - vy * b),
            (self.cx + ux * a + vx * b, self.cy + uy * a + vy * b),
            (self.cx - ux * a + vx * b, self.cy - uy * a + vy * b),
        ]
    }
}

/// Whether an MRZ was found in any orientation.
fn any_found(outcomes: &[MrzOutcome]) -> bool {
    outcomes.iter().any(|o| matches!(o, MrzOutcome::Found(_)))
}

/// Long thin rows: the only ones that can be MRZ lines.
fn is_long_row(r: &RotRect) -> bool {
    r.len >= 8.0 * r.h && r.h >= 4.0
}

/// A page in one orientation and the rows already recognized on it.
struct PageRows<'a> {
    page: &'a RgbImage,
    rows: &'a mut Vec<ReadRow>,
}

/// A recognized crop: where it was taken, the text and the per-character probabilities.
type ReadRow = (RotRect, String, Vec<f32>);

/// `image` turned clockwise by `quarter` quarter turns (made once, on first use).
fn turned_page<'a>(
    image: &'a RgbImage,
    pages: &'a mut [Option<RgbImage>; 4],
    quarter: usize,
) -> &'a RgbImage {
    if quarter == 0 {
        return image;
    }
    pages[quarter].get_or_insert_with(|| match quarter {
        1 => image::imageops::rotate90(image),
        2 => image::imageops::rotate180(image),
        _ => image::imageops::rotate270(image),
    })
}

/// A rectangle of a `w` x `h` page, on the page turned clockwise by `turns` quarter turns.
fn turn_rect(r: &RotRect, turns: usize, w: u32, h: u32) -> RotRect {
    let (mut r, mut w, mut h) = (*r, w as f32, h as f32);
    for _ in 0..turns % 4 {
        // Pixel (x, y) goes to (h - 1 - y, x): in continuous coordinates (h - y, x).
        r = RotRect {
            cx: h - r.cy,
            cy: r.cx,
            angle: normalize_angle(r.angle + std::f32::consts::FRAC_PI_2),
            ..r
        };
        std::mem::swap(&mut w, &mut h);
    }
    r
}

/// Two detections of the same row (e.g. from the lower-part and the whole-page detector passes)
/// give the same crop to within a fraction of a pixel row.
fn same_row(a: &RotRect, b: &RotRect) -> bool {
    let tol = 0.1 * a.h.min(b.h);
    (a.cx - b.cx).abs() <= tol
        && (a.cy - b.cy).abs() <= tol
        && (a.len - b.len).abs() <= 0.02 * a.len.max(b.len)
        && (a.h - b.h).abs() <= 0.05 * a.h.max(b.h)
        && angle_diff(a.angle, b.angle) <= 0.005
}

/// One recognized row.
#[derive(Clone, Debug)]
struct RowText {
    text: String,
    probs: Vec<f32>,
    /// Position across the text direction (top to bottom).
    across: f32,
    h: f32,
    rect: RotRect,
}

impl MrzReader {
    pub fn load(cfg: &DocumentEngineConfig) -> Result<MrzReader, DocumentError> {
        let pool = |model| SessionPool::load(&cfg.models_dir, model, cfg.sessions, cfg.intra_threads);
        let det = pool(DET_MODEL)?;
        let rec = pool(REC_MODEL)?;
        let dictionary = rec.with(|s| -> Result<String, DocumentError> {
            let meta = s.metadata()?;
            meta.custom("character")
                .ok_or_else(|| DocumentError::Inference("recognizer metadata has no `character` key".into()))
        })?;
        // Class 0 is the CTC blank, then the dictionary lines, then a space.
        let mut chars: Vec<String> = vec![String::new()];
        chars.extend(dictionary.lines().map(str::to_string));
        chars.push(" ".into());
        let mrz_classes: Vec<(usize, char)> = chars
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<' => {
                        Some((i, c))
                    }
                    _ => None,
                }
            })
            .collect();
        if mrz_classes.len() != 37 {
            return Err(DocumentError::Inference(format!(
                "recognizer dictionary lacks MRZ characters ({} of 37 found)",
                mrz_classes.len()
            )));
        }
        Ok(MrzReader { det, rec, mrz_classes, num_classes: chars.len() })
    }

    /// Reads the MRZ, trying the page as is, then rotated by 90°, 180° and 270°.
    ///
    /// The detector finds text rows at any angle, so its boxes are reused for every orientation
    /// (turned with the page): the detector runs on the lower part of the upright page at the quick
    /// size, then on the whole page at the quick size, then at the full size, each pass only when
    /// the previous ones gave nothing conclusive in any orientation. Only when steep rows were seen
    /// and still nothing was found does the detector run on the quarter-turned page as well. A row
    /// read once in an orientation is not read again.
    pub fn read(&self, image: &RgbImage, today: NaiveDate) -> Result<MrzOutcome, DocumentError> {
        let (w, h) = image.dimensions();
        let mut pages: [Option<RgbImage>; 4] = Default::default();
        let mut rows: [Vec<ReadRow>; 4] = Default::default();
        let mut outcomes: [MrzOutcome; 4] = std::array::from_fn(|_| MrzOutcome::None);
        // The longest steep row seen on the upright page, and the order in which to try the turns.
        let mut longest_steep: Option<RotRect> = None;
        let mut order = [0, 1, 2, 3];
        // (quarter turns of the page given to the detector, its longest side, lower part covered)
        let passes = [
            (0, DET_FAST_SIDE, BOTTOM_FRACTION),
            (0, DET_FAST_SIDE, 1.0),
            (0, DET_MAX_SIDE, 1.0),
            (1, DET_FAST_SIDE, 1.0),
            (1, DET_MAX_SIDE, 1.0),
        ];
        for (det_quarter, side, fraction) in passes {
            if det_quarter == 1 && (any_found(&outcomes) || longest_steep.is_none()) {
                break;
            }
            let (pw, ph) = if det_quarter == 0 { (w, h) } else { (h, w) };
            if side != DET_FAST_SIDE && pw.max(ph) as f32 <= DET_FAST_SIDE as f32 * 1.1 {
                // Small page: the full size would give the detector (about) the same input again.
                continue;
            }
            let boxes = self.detect(turned_page(image, &mut pages, det_quarter), side, fraction)?;
            if det_quarter == 0 {
                for r in group_rows(&boxes) {
                    if is_long_row(&r)
                        && r.angle.abs() > MAX_ROW_ANGLE
                        && longest_steep.is_none_or(|l| r.len > l.len)
                    {
                        longest_steep = Some(r);
                    }
                }
            }
            // The MRZ is at the bottom of the upright page: when the longest steep row (most likely
            // an MRZ line) is on the left, the page was turned clockwise and 270° undoes it.
            let first_turn = if longest_steep.is_some_and(|r| r.cx < w as f32 / 2.0) { 3 } else { 1 };
            order = [0, first_turn, 2, 4 - first_turn];
            for quarter in order {
                // The lower part of one orientation is not the lower part of another; once an MRZ
                // is found, only its orientation is read further.
                if (fraction < 1.0 && quarter != det_quarter)
                    || (any_found(&outcomes) && !matches!(outcomes[quarter], MrzOutcome::Found(_)))
                {
                    continue;
                }
                let turns = (quarter + 4 - det_quarter) % 4;
                let boxes: Vec<RotRect> = boxes.iter().map(|b| turn_rect(b, turns, pw, ph)).collect();
                let page = turned_page(image, &mut pages, quarter);
                let mut pr = PageRows { page, rows: &mut rows[quarter] };
                let next = self.read_checked(&mut pr, today, &boxes)?;
                let outcome =
                    better_outcome(std::mem::replace(&mut outcomes[quarter], MrzOutcome::None), next);
                if is_conclusive(&outcome) {
                    return Ok(outcome);
                }
                outcomes[quarter] = outcome;
            }
        }
        let mut seen = false;
        for quarter in order {
            match std::mem::replace(&mut outcomes[quarter], MrzOutcome::None) {
                MrzOutcome::Found(r) => return Ok(MrzOutcome::Found(r)),
                MrzOutcome::Unreadable => seen = true,
                MrzOutcome::None => {}
            }
        }
        Ok(if seen { MrzOutcome::Unreadable } else { MrzOutcome::None })
    }

    /// One detector pass, with the second reads for failing check digits and uncertain names.
    fn read_checked(
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
        let (text, probs) = self.recognize(&crop_rect(pr.page, rect))?;
        pr.rows.push((*rect, text.clone(), probs.clone()));
        Ok((text, probs))
    }

    /// DB text detection on the lower `fraction` of the page scaled to `max_side`; boxes in page
    /// coordinates.
    fn detect(&self, page: &RgbImage, max_side: u32, fraction: f32) -> Result<Vec<RotRect>, DocumentError> {
        let (w, h) = page.dimensions();
        let (dw, dh_full) = det_dims(w, h, max_side);
        // Detector rows from `top` down, a multiple of 32 high as the detector needs.
        let top = dh_full - (((dh_full as f32 * fraction / 32.0).round() as u32).clamp(1, dh_full / 32) * 32);
        let dh = dh_full - top;
        // Only the page rows the detector will see are resized.
        let page_top = ((top as f32 * h as f32 / dh_full as f32).round() as u32).min(h - 1);
        let region = image::imageops::crop_imm(page, 0, page_top, w, h - page_top);
        let small = if w.max(h) > max_side {
            // Area averaging keeps thin strokes when shrinking a lot.
            let t = image::imageops::thumbnail(&*region, dw, dh);
            if t.dimensions() == (dw, dh) {
                t
            } else {
                image::imageops::resize(&t, dw, dh, image::imageops::FilterType::Triangle)
            }
        } else {
            image::imageops::resize(&*region, dw, dh, image::imageops::FilterType::Triangle)
        };
        let (sx, sy) = (w as f32 / dw as f32, (h - page_top) as f32 / dh as f32);
        let mean = [0.485f32, 0.456, 0.406];
        let std = [0.229f32, 0.224, 0.225];
        let input = planar(&small, |c, v| (v as f32 / 255.0 - mean[c]) / std[c], false)?;
        let prob = self.det.with(|s| -> Result<Vec<f32>, DocumentError> {
            let outputs = s.run(idverify_onnx::ort::inputs![Tensor::from_array(input)?])?;
            let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
            if shape.iter().product::<i64>() != (dw * dh) as i64 {
                return Err(DocumentError::Inference(format!("unexpected detector output shape {shape:?}")));
            }
            Ok(data.to_vec())
        })?;
        let boxes = db_boxes(&prob, dw as usize, dh as usize);
        Ok(boxes
            .into_iter()
            .map(|b| {
                // Back to page coordinates (the two axes may scale slightly differently).
                let (ux, uy) = b.dir();
                let (lx, ly) = (ux * b.len * sx, uy * b.len * sy);
                let (hx, hy) = (-uy * b.h * sx, ux * b.h * sy);
                RotRect {
                    cx: b.cx * sx,
                    cy: page_top as f32 + b.cy * sy,
                    len: (lx * lx + ly * ly).sqrt(),
                    h: (hx * hx + hy * hy).sqrt(),
                    angle: ly.atan2(lx),
                }
            })
            .collect())
    }

    /// Greedy CTC decoding restricted to the MRZ alphabet; returns text and per-character probability.
    fn recognize(&self, crop: &RgbImage) -> Result<(String, Vec<f32>), DocumentError> {
        // BGR order, (x/255 - 0.5) / 0.5
        let input = planar(crop, |_, v| v as f32 / 127.5 - 1.0, true)?;
        let (steps, classes, data) =
            self.rec.with(|s| -> Result<(usize, usize, Vec<f32>), DocumentError> {
                let outputs = s.run(idverify_onnx::ort::inputs![Tensor::from_array(input)?])?;
                let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
                if shape.len() != 3 {
                    return Err(DocumentError::Inference(format!(
                        "unexpected recognizer output shape {shape:?}"
                    )));
                }
                Ok((shape[1] as usize, shape[2] as usize, data.to_vec()))
            })?;
        if classes != self.num_classes {
            return Err(DocumentError::Inference(format!(
                "recognizer has {classes} classes, dictionary {}",
                self.num_classes
            )));
        }
        let mut text = String::new();
        let mut probs = Vec::new();
        let mut prev: Option<usize> = None;
        for t in 0..steps {
            let row = &data[t * classes..(t + 1) * classes];
            let mut best = (0usize, row[0]);
            for &(i, _) in &self.mrz_classes {
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
            let c = self.mrz_classes.iter().find(|(i, _)| *i == best.0).map(|(_, c)| *c).unwrap_or('<');
            text.push(c);
            probs.push(best.1);
        }
        Ok((text, probs))
    }
}

/// Detector input size for a `w` x `h` page and a longest side of `max_side`: pages larger than
/// that are scaled down, small ones up to `DET_MIN_SIDE`; sides are multiples of 32.
fn det_dims(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let longest = w.max(h) as f32;
    let scale = if longest > max_side as f32 {
        max_side as f32 / longest
    } else if longest < DET_MIN_SIDE as f32 {
        DET_MIN_SIDE as f32 / longest
    } else {
        1.0
    };
    let round32 = |v: f32| (((v / 32.0).round() as u32).max(1)) * 32;
    (round32(w as f32 * scale), round32(h as f32 * scale))
}

/// NCHW tensor data from an RGB image; `bgr` swaps the channel order.
fn planar(img: &RgbImage, f: impl Fn(usize, u8) -> f32, bgr: bool) -> Result<Array4<f32>, DocumentError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    let mut data = vec![0f32; 3 * plane];
    for (i, p) in img.as_raw().chunks_exact(3).enumerate() {
        for (c, &v) in p.iter().enumerate() {
            let dst = if bgr { 2 - c } else { c };
            data[dst * plane + i] = f(c, v);
        }
    }
    Array4::from_shape_vec((1, 3, h, w), data).map_err(|e| DocumentError::Inference(e.to_string()))
}

/// Connected components of the thresholded probability map, as rotated rectangles (map coordinates).
pub(crate) fn db_boxes(prob: &[f32], w: usize, h: usize) -> Vec<RotRect> {
    let mut label = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let mut pixels: Vec<(usize, usize)> = Vec::new();
    for start in 0..w * h {
        if label[start] || prob[start] <= DB_THRESHOLD {
            continue;
        }
        label[start] = true;
        stack.push(start);
        pixels.clear();
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            pixels.push((x, y));
            let mut visit = |j: usize| {
                if !label[j] && prob[j] > DB_THRESHOLD {
                    label[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        if pixels.len() < 10 {
            continue;
        }
        let score: f32 = pixels.iter().map(|&(x, y)| prob[y * w + x]).sum::<f32>() / pixels.len() as f32;
        if score < DB_BOX_THRESHOLD {
            continue;
        }
        if let Some(r) = min_rect(&pixels) {
            // DB shrinks text regions: grow back by area * ratio / perimeter on every side.
            let d = r.len * r.h * DB_UNCLIP_RATIO / (2.0 * (r.len + r.h));
            out.push(RotRect { len: r.len + 2.0 * d, h: r.h + 2.0 * d, ..r });
        }
    }
    out
}

/// Oriented bounding rectangle from the principal axis of the pixels.
fn min_rect(pixels: &[(usize, usize)]) -> Option<RotRect> {
    let n = pixels.len() as f32;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = pixels.iter().fold((0.0f32, 0.0f32), |(a, b), &(x, y)| (a + x as f32, b + y as f32));
    let (mx, my) = (mx / n, my / n);
    let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
    for &(x, y) in pixels {
        let (dx, dy) = (x as f32 - mx, y as f32 - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let angle = normalize_angle(0.5 * (2.0 * sxy).atan2(sxx - syy));
    let (ux, uy) = (angle.cos(), angle.sin());
    let (mut umin, mut umax, mut vmin, mut vmax) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in pixels {
        let (dx, dy) = (x as f32 - mx, y as f32 - my);
        let u = dx * ux + dy * uy;
        let v = -dx * uy + dy * ux;
        umin = umin.min(u - 0.5);
        umax = umax.max(u + 0.5);
        vmin = vmin.min(v - 0.5);
        vmax = vmax.max(v + 0.5);
    }
    let (uc, vc) = ((umin + umax) / 2.0, (vmin + vmax) / 2.0);
    let mut rect = RotRect {
        cx: mx + uc * ux - vc * uy,
        cy: my + uc * uy + vc * ux,
        len: umax - umin,
        h: vmax - vmin,
        angle,
    };
    if rect.h > rect.len {
        // Text runs along the longer side.
        std::mem::swap(&mut rect.len, &mut rect.h);
        rect.angle = normalize_angle(rect.angle + std::f32::consts::FRAC_PI_2);
    }
    Some(rect)
}

fn normalize_angle(mut a: f32) -> f32 {
    use std::f32::consts::PI;
    while a > PI / 2.0 {
        a -= PI;
    }
    while a <= -PI / 2.0 {
        a += PI;
    }
    a
}

/// Merges boxes that continue each other along the same text line.
pub(crate) fn group_rows(boxes: &[RotRect]) -> Vec<RotRect> {
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

fn angle_diff(a: f32, b: f32) -> f32 {
    normalize_angle(a - b).abs()
}

/// Two slightly different crops of a row, for second reads.
fn crop_variants(rect: &RotRect) -> [RotRect; 2] {
    [RotRect { h: rect.h * 1.2, ..*rect }, RotRect { h: rect.h * 0.9, len: rect.len * 1.03, ..*rect }]
}

/// Samples the rectangle from the page into an upright crop of height `REC_HEIGHT` (bilinear).
fn crop_rect(page: &RgbImage, r: &RotRect) -> RgbImage {
    let out_h = REC_HEIGHT;
    let out_w = ((REC_HEIGHT as f32 * r.len / r.h.max(1.0)).round() as u32).clamp(REC_HEIGHT, 2400);
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

/// Pads or trims a read line to `target` characters by growing or shrinking its longest run of
/// fillers (where miscounts happen). `None` if the line is too far off.
fn fit_line(text: &str, probs: &[f32], target: usize) -> Option<(String, Vec<f32>)> {
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
fn choose_mrz(mut rows: Vec<RowText>, today: NaiveDate) -> MrzOutcome {
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
fn is_conclusive(outcome: &MrzOutcome) -> bool {
    matches!(outcome, MrzOutcome::Found(r) if r.record.all_check_digits_pass() && !r.name_uncertain)
}

fn better_outcome(a: MrzOutcome, b: MrzOutcome) -> MrzOutcome {
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

fn passed_count(read: &MrzRead) -> usize {
    read.record.check_digits.iter().filter(|c| c.passed).count()
}

/// More valid check digits first, then the higher recognizer probability.
fn is_better(read: &MrzRead, than: Option<&MrzRead>) -> bool {
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
fn evaluate(
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
fn clear_after_name(text: &mut String, probs: &[f32], start: usize) {
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
    fn turned_rects_follow_the_turned_page() {
        // One marked pixel; its centre, turned with the page, lands on the marked pixel's centre.
        let (w, h) = (5u32, 3u32);
        let mut page = RgbImage::new(w, h);
        page.put_pixel(1, 0, image::Rgb([255, 0, 0]));
        let pages = [
            page.clone(),
            image::imageops::rotate90(&page),
            image::imageops::rotate180(&page),
            image::imageops::rotate270(&page),
        ];
        let rect = RotRect { cx: 1.5, cy: 0.5, len: 2.0, h: 1.0, angle: 0.0 };
        for (turns, turned) in pages.iter().enumerate() {
            let r = turn_rect(&rect, turns, w, h);
            let (x, y) = (r.cx.floor() as u32, r.cy.floor() as u32);
            assert_eq!(turned.get_pixel(x, y).0, [255, 0, 0], "turns {turns}");
            // Text direction turns with the page (a horizontal row becomes vertical and back).
            let vertical = turns % 2 == 1;
            assert_eq!(r.angle.abs() > 1.5, vertical, "turns {turns} angle {}", r.angle);
        }
        let back = turn_rect(&turn_rect(&rect, 1, w, h), 3, h, w);
        assert!((back.cx - rect.cx).abs() < 1e-4 && (back.cy - rect.cy).abs() < 1e-4);
    }

    #[test]
    fn same_row_tolerates_only_tiny_differences() {
        let a = RotRect { cx: 300.0, cy: 400.0, len: 600.0, h: 20.0, angle: 0.01 };
        assert!(same_row(&a, &RotRect { cx: 301.0, cy: 400.5, len: 604.0, ..a }));
        // The second-read crops (taller, longer) and the neighbour lines are different rows.
        assert!(!same_row(&a, &RotRect { h: 24.0, ..a }));
        assert!(!same_row(&a, &RotRect { h: 18.0, len: 618.0, ..a }));
        assert!(!same_row(&a, &RotRect { cy: 422.0, ..a }));
    }

    #[test]
    fn detector_sizes_are_multiples_of_32() {
        assert_eq!(det_dims(1600, 1200, 640), (640, 480));
        assert_eq!(det_dims(1600, 1200, 960), (960, 736));
        // Small pages are upscaled to the minimum side.
        assert_eq!(det_dims(400, 290, 640), (640, 480));
        assert_eq!(det_dims(400, 290, 960), (640, 480));
    }

    #[test]
    fn db_boxes_find_a_tilted_bar() {
        let (w, h) = (200usize, 100usize);
        let mut prob = vec![0.0f32; w * h];
        // A 120 x 8 bar tilted by ~0.1 rad.
        for i in 0..120 {
            for j in 0..8 {
                let x = 40.0 + i as f32 * 0.995 - j as f32 * 0.0998;
                let y = 40.0 + i as f32 * 0.0998 + j as f32 * 0.995;
                prob[y.round() as usize * w + x.round() as usize] = 0.9;
            }
        }
        let boxes = db_boxes(&prob, w, h);
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        assert!((b.angle - 0.1).abs() < 0.03, "angle {}", b.angle);
        assert!(b.len > 120.0 && b.len < 140.0, "len {}", b.len);
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
