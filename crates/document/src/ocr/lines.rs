//! Every text line of a card front, for the visual-zone parser ([`crate::viz`]).
//!
//! One detector pass over the whole page at a size where a card that fills the photo has text tall
//! enough to detect; a second one, on the text's region only and enlarged, when the text is
//! smaller than that (a card photographed from afar). Then each detected box is read on its own
//! with the Latin recognizer. The detector's boxes are used as they are, not grouped into rows: on
//! a card, a gap wide enough to split two boxes separates two columns (`SEXE / Sex` and
//! `NATIONALITÉ / Nationality`), which the parser must see apart.
//!
//! A card photographed sideways or upside down is read in the quarter turn where its text is
//! upright: the detector finds text at any angle, so its boxes say whether the lines run across or
//! along the page, and they are reused, turned with the page, for each orientation tried.

use image::RgbImage;

use super::geometry::{RotRect, turn_rect, turned_page};
use super::reading::{MAX_CROP_WIDTH, crop_rect, ctc_greedy};
use super::{DET_MAX_SIDE, MrzReader, detect::det_dims};
use crate::DocumentError;
use crate::viz::TextLine;

/// At most this many boxes are read (the largest); a card front has about 15 to 40.
const MAX_LINES: usize = 48;
/// Boxes lower than this (page pixels) hold no legible text.
const MIN_HEIGHT: f32 = 6.0;
/// Boxes steeper than this (radians) are not read in an orientation (they are read in the quarter
/// turn where they lie flat).
const MAX_ANGLE: f32 = 0.35;
/// Mean character probability of a page's largest lines above which they are taken to be the
/// right way up: upside-down text reads as garbage with a low probability, and then the page turned
/// by a half turn is tried too (`PROBE_LINES` more reads). Clean synthetic fronts read at 0.99
/// upright and 0.69 to 0.73 upside down
/// (`fronts_photographed_sideways_or_upside_down_are_read_in_their_upright_turn`).
const UPRIGHT_CONFIDENCE: f32 = 0.88;
/// The largest lines read first, in one turn or two, to tell which way up the text is.
const PROBE_LINES: usize = 3;

/// Longest side of a card photo in the detector's first pass. At this size, the text of a card
/// that fills the photo is about 20 detector pixels high (box height, median over its lines); at
/// 960, the size it used to be, reads were the same and the detector cost 1.7 times as much.
const CARD_DET_SIDE: u32 = 736;
/// Median box height (detector pixels) below which small text (field numbers, a lone letter) is
/// missed: a card photographed from twice as far has 12 to 15 at `CARD_DET_SIDE`, and 13 of 48
/// such fronts lost a field there (BENCHMARKS.md, session 9). Such a page gets a second pass, on
/// its text region.
const MIN_TEXT_HEIGHT: f32 = 17.0;
/// Median box height the second pass enlarges the text region to.
const TARGET_TEXT_HEIGHT: f32 = 20.0;
/// Margin around the first pass's boxes in the second pass, in median text heights: room for
/// lines the first pass missed near the card's edges.
const REGION_MARGIN: f32 = 3.0;

/// A box of one or two characters (`F` under `SEXE / Sex`) is taller than wide, so its principal
/// axis is vertical: read it across instead.
fn upright_short_box(b: RotRect) -> RotRect {
    if b.angle.abs() > std::f32::consts::FRAC_PI_4 && b.len < 1.5 * b.h {
        let angle = b.angle - std::f32::consts::FRAC_PI_2.copysign(b.angle);
        return RotRect { len: b.h, h: b.len, angle, ..b };
    }
    b
}

/// Whether most of the text (by area, elongated boxes only) runs along the page's height: the page
/// is turned by a quarter turn one way or the other.
fn mostly_steep(boxes: &[RotRect]) -> bool {
    let (mut flat, mut steep) = (0.0f32, 0.0f32);
    for b in boxes.iter().filter(|b| b.len >= 2.0 * b.h) {
        let angle = b.angle.abs();
        if angle <= MAX_ANGLE {
            flat += b.len * b.h;
        } else if angle >= std::f32::consts::FRAC_PI_2 - MAX_ANGLE {
            steep += b.len * b.h;
        }
    }
    steep > flat
}

/// Character-weighted mean probability of a read.
fn mean_confidence<'a>(lines: impl IntoIterator<Item = &'a TextLine>) -> f32 {
    let (sum, count) = lines.into_iter().fold((0.0f32, 0usize), |(s, n), l| {
        let chars = l.text.chars().count();
        (s + l.confidence * chars as f32, n + chars)
    });
    if count == 0 { 0.0 } else { sum / count as f32 }
}

/// A box (turned by `upright_short_box`) that can hold legible text, in any orientation.
fn legible(b: &RotRect) -> bool {
    b.h >= MIN_HEIGHT && b.len >= b.h * 0.3
}

/// The boxes worth reading, largest first.
fn readable_boxes(boxes: impl IntoIterator<Item = RotRect>) -> Vec<RotRect> {
    let mut boxes: Vec<RotRect> = boxes
        .into_iter()
        .map(upright_short_box)
        .filter(|b| legible(b) && b.angle.abs() <= MAX_ANGLE)
        .collect();
    boxes.sort_by(|a, b| (b.len * b.h).total_cmp(&(a.len * a.h)));
    boxes.truncate(MAX_LINES);
    boxes
}

/// Where the lone letter of a sex label with no value read should be: right below the label's
/// start, two letters wide (see [`crate::viz::unread_sex_label`]). Box heights are the detector's,
/// about twice the glyphs': the letter's centre is 0.8 to 1.1 label box heights below the label's
/// (values are printed larger than labels), and the slot stops short of the next label.
fn lone_letter_slot(read: &[(RotRect, TextLine)]) -> Option<RotRect> {
    let lines: Vec<TextLine> = read.iter().map(|(_, line)| line.clone()).collect();
    let (li, at) = crate::viz::unread_sex_label(&lines)?;
    let label = read[li].0;
    let (ux, uy) = label.dir();
    let start = at * label.len - label.len / 2.0;
    let (along, below) = (start + 0.85 * label.h, 0.95 * label.h);
    Some(RotRect {
        cx: label.cx + ux * along - uy * below,
        cy: label.cy + uy * along + ux * below,
        len: 2.3 * label.h,
        h: 1.4 * label.h,
        angle: label.angle,
    })
}

/// Median height (page pixels) of the boxes that can hold a line of text, in any turn.
fn median_height(boxes: &[RotRect]) -> Option<f32> {
    let mut heights: Vec<f32> =
        boxes.iter().map(|&b| upright_short_box(b)).filter(legible).map(|b| b.h).collect();
    heights.sort_by(f32::total_cmp);
    heights.get(heights.len() / 2).copied()
}

/// The bounding rectangle of `boxes` widened by `margin` on each side, within a `w` x `h` page:
/// (left, top, right, bottom), or `None` when it is empty.
fn text_region(boxes: &[RotRect], margin: f32, w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
    let corners = boxes.iter().flat_map(|b| b.corners());
    let (x0, y0, x1, y1) = corners
        .fold((f32::MAX, f32::MAX, f32::MIN, f32::MIN), |(x0, y0, x1, y1), (x, y)| {
            (x0.min(x), y0.min(y), x1.max(x), y1.max(y))
        });
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let (x0, y0) = (clamp(x0 - margin, w), clamp(y0 - margin, h));
    let (x1, y1) = (clamp((x1 + margin).ceil(), w), clamp((y1 + margin).ceil(), h));
    (x1 > x0 + 8 && y1 > y0 + 8).then_some((x0, y0, x1, y1))
}

/// The lines top to bottom, left to right (by their boxes' centres).
fn in_reading_order(mut read: Vec<(RotRect, TextLine)>) -> Vec<TextLine> {
    read.sort_by(|(a, _), (b, _)| a.cy.total_cmp(&b.cy).then(a.cx.total_cmp(&b.cx)));
    read.into_iter().map(|(_, line)| line).collect()
}

impl MrzReader {
    /// The text lines of `page` as it is (upright), top to bottom, left to right.
    pub(crate) fn read_text_lines(&self, page: &RgbImage) -> Result<Vec<TextLine>, DocumentError> {
        let boxes = readable_boxes(self.detect_card_text(page)?);
        Ok(in_reading_order(self.read_boxes(page, &boxes)?))
    }

    /// The text lines of a card photographed in any quarter turn, top to bottom, left to right in
    /// the turn where they read upright: the one the detector's boxes lie flat in, or the opposite
    /// one when its largest lines read with a higher probability there.
    pub(crate) fn read_card_lines(&self, page: &RgbImage) -> Result<Vec<TextLine>, DocumentError> {
        let detected = self.detect_card_text(page)?;
        let (w, h) = page.dimensions();
        let turned = |quarter| readable_boxes(detected.iter().map(|b| turn_rect(b, quarter, w, h)));
        let mut pages: [Option<RgbImage>; 4] = Default::default();
        let mut quarter = if mostly_steep(&detected) { 1 } else { 0 };
        let mut boxes = turned(quarter);
        let probed = PROBE_LINES.min(boxes.len());
        let mut read = self.read_boxes(turned_page(page, &mut pages, quarter), &boxes[..probed])?;
        let confidence = mean_confidence(read.iter().map(|(_, line)| line));
        if confidence < UPRIGHT_CONFIDENCE {
            let opposite = quarter + 2;
            let opposite_boxes = turned(opposite);
            let opposite_read =
                self.read_boxes(turned_page(page, &mut pages, opposite), &opposite_boxes[..probed])?;
            if mean_confidence(opposite_read.iter().map(|(_, line)| line)) > confidence {
                (quarter, boxes, read) = (opposite, opposite_boxes, opposite_read);
            }
        }
        let upright = turned_page(page, &mut pages, quarter);
        read.extend(self.read_boxes(upright, &boxes[probed..])?);
        if let Some(slot) = lone_letter_slot(&read) {
            read.extend(self.read_boxes(upright, &[slot])?);
        }
        Ok(in_reading_order(read))
    }

    /// Text boxes of a card photo, in page coordinates: the whole page at `CARD_DET_SIDE`, then,
    /// when its text is smaller than `MIN_TEXT_HEIGHT` there, the region of that text again,
    /// scaled so that it is `TARGET_TEXT_HEIGHT` high (no larger than the photo's own pixels or
    /// `DET_MAX_SIDE`, whichever is less, unless the region is smaller than the detector's minimum).
    fn detect_card_text(&self, page: &RgbImage) -> Result<Vec<RotRect>, DocumentError> {
        let boxes = self.detect(page, CARD_DET_SIDE, 1.0)?;
        let (w, h) = page.dimensions();
        let scale = det_dims(w, h, CARD_DET_SIDE).0 as f32 / w as f32;
        let Some(text_height) = median_height(&boxes) else {
            return Ok(boxes);
        };
        if text_height * scale >= MIN_TEXT_HEIGHT {
            return Ok(boxes);
        }
        let Some((x0, y0, x1, y1)) = text_region(&boxes, REGION_MARGIN * text_height, w, h) else {
            return Ok(boxes);
        };
        let region = image::imageops::crop_imm(page, x0, y0, x1 - x0, y1 - y0).to_image();
        let side = ((x1 - x0).max(y1 - y0) as f32 * TARGET_TEXT_HEIGHT / text_height).round() as u32;
        let side = side.clamp(32, DET_MAX_SIDE);
        let found = self.detect(&region, side, 1.0)?;
        Ok(found.into_iter().map(|b| RotRect { cx: b.cx + x0 as f32, cy: b.cy + y0 as f32, ..b }).collect())
    }

    /// Reads each box of `page` (boxes that read as nothing are left out).
    fn read_boxes(
        &self,
        page: &RgbImage,
        boxes: &[RotRect],
    ) -> Result<Vec<(RotRect, TextLine)>, DocumentError> {
        let (w, h) = (page.width() as f32, page.height() as f32);
        let mut lines = Vec::with_capacity(boxes.len());
        for b in boxes {
            let (steps, classes, data) =
                self.run_recognizer(&self.viz_rec, &crop_rect(page, b, MAX_CROP_WIDTH))?;
            if classes <= self.viz_classes.last().map_or(0, |(i, _)| *i) {
                return Err(DocumentError::Inference(format!(
                    "visual-zone recognizer has {classes} classes, fewer than its dictionary"
                )));
            }
            let (text, probs) = ctc_greedy(&data, steps, classes, &self.viz_classes);
            let text = text.trim().to_string();
            if text.is_empty() {
                continue;
            }
            let confidence = probs.iter().sum::<f32>() / probs.len().max(1) as f32;
            let (half_len, half_h) = (b.len / 2.0, b.h / 2.0);
            lines.push((
                *b,
                TextLine {
                    text,
                    confidence,
                    left: ((b.cx - half_len) / w).clamp(0.0, 1.0),
                    top: ((b.cy - half_h) / h).clamp(0.0, 1.0),
                    right: ((b.cx + half_len) / w).clamp(0.0, 1.0),
                    bottom: ((b.cy + half_h) / h).clamp(0.0, 1.0),
                },
            ));
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(cx: f32, cy: f32, len: f32, h: f32) -> RotRect {
        RotRect { cx, cy, len, h, angle: 0.0 }
    }

    fn read_line(b: RotRect, text: &str) -> (RotRect, TextLine) {
        let (w, h) = (2530.0, 1722.0);
        let line = TextLine {
            text: text.to_string(),
            confidence: 0.99,
            left: (b.cx - b.len / 2.0) / w,
            top: (b.cy - b.h / 2.0) / h,
            right: (b.cx + b.len / 2.0) / w,
            bottom: (b.cy + b.h / 2.0) / h,
        };
        (b, line)
    }

    #[test]
    fn the_lone_letter_slot_covers_the_letter_under_its_label() {
        // Boxes of a French ID card photographed from afar (`/tmp/fronts_far` 011, session 10).
        let label = read_line(flat(769.0, 540.0, 111.9, 36.0), "SEXE / Sex");
        let letter = flat(730.0, 570.0, 34.2, 39.1);
        let nationality = read_line(flat(836.0, 616.0, 244.4, 32.9), "NATIONALITÉ / Nationality");
        let slot = lone_letter_slot(&[label.clone(), nationality.clone()]).expect("the letter was not read");
        let [(x0, y0), _, (x1, y1), _] = slot.corners();
        assert!(x0 <= letter.cx - letter.len / 2.0 && x1 >= letter.cx + letter.len / 2.0, "{slot:?}");
        assert!(y0 <= letter.cy - 0.25 * letter.h && y1 >= letter.cy + 0.25 * letter.h, "{slot:?}");
        // Not into the next label's glyphs (the middle half of its box).
        assert!(y1 <= nationality.0.cy - 0.25 * nationality.0.h, "{slot:?}");
        // Read already: no slot.
        assert!(lone_letter_slot(&[label, read_line(letter, "F"), nationality]).is_none());
    }

    #[test]
    fn the_text_region_is_the_boxes_with_a_margin_within_the_page() {
        let boxes = [flat(100.0, 50.0, 80.0, 20.0), flat(300.0, 200.0, 100.0, 20.0)];
        assert_eq!(text_region(&boxes, 10.0, 1000, 1000), Some((50, 30, 360, 220)));
        assert_eq!(text_region(&boxes, 100.0, 400, 250), Some((0, 0, 400, 250)));
        assert_eq!(text_region(&[], 10.0, 1000, 1000), None);
    }

    #[test]
    fn the_median_height_counts_lone_letters_and_turned_lines_but_not_specks() {
        let turned = RotRect { angle: std::f32::consts::FRAC_PI_2, ..flat(0.0, 0.0, 200.0, 30.0) };
        let boxes = [flat(0.0, 0.0, 200.0, 20.0), turned, turned, flat(0.0, 0.0, 3.0, 3.0)];
        assert_eq!(median_height(&boxes), Some(30.0));
        assert_eq!(median_height(&[flat(0.0, 0.0, 3.0, 3.0)]), None);
    }
}
