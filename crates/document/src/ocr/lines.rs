//! Every text line of a card front, for the visual-zone parser ([`crate::viz`]).
//!
//! One detector pass over the whole page at the full size (card text is small next to the page),
//! then each detected box read on its own with the Latin recognizer. The detector's boxes are used
//! as they are, not grouped into rows: on a card, a gap wide enough to split two boxes separates
//! two columns (`SEXE / Sex` and `NATIONALITÉ / Nationality`), which the parser must see apart.
//!
//! A card photographed sideways or upside down is read in the quarter turn where its text is
//! upright: the detector finds text at any angle, so its boxes say whether the lines run across or
//! along the page, and they are reused, turned with the page, for each orientation tried.

use image::RgbImage;

use super::geometry::{RotRect, turn_rect, turned_page};
use super::reading::{MAX_CROP_WIDTH, crop_rect, ctc_greedy};
use super::{DET_MAX_SIDE, MrzReader};
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

/// The boxes worth reading, largest first.
fn readable_boxes(boxes: impl IntoIterator<Item = RotRect>) -> Vec<RotRect> {
    let mut boxes: Vec<RotRect> = boxes
        .into_iter()
        .map(upright_short_box)
        .filter(|b| b.h >= MIN_HEIGHT && b.len >= b.h * 0.3 && b.angle.abs() <= MAX_ANGLE)
        .collect();
    boxes.sort_by(|a, b| (b.len * b.h).total_cmp(&(a.len * a.h)));
    boxes.truncate(MAX_LINES);
    boxes
}

/// The lines top to bottom, left to right (by their boxes' centres).
fn in_reading_order(mut read: Vec<(RotRect, TextLine)>) -> Vec<TextLine> {
    read.sort_by(|(a, _), (b, _)| a.cy.total_cmp(&b.cy).then(a.cx.total_cmp(&b.cx)));
    read.into_iter().map(|(_, line)| line).collect()
}

impl MrzReader {
    /// The text lines of `page` as it is (upright), top to bottom, left to right.
    pub(crate) fn read_text_lines(&self, page: &RgbImage) -> Result<Vec<TextLine>, DocumentError> {
        let boxes = readable_boxes(self.detect(page, DET_MAX_SIDE, 1.0)?);
        Ok(in_reading_order(self.read_boxes(page, &boxes)?))
    }

    /// The text lines of a card photographed in any quarter turn, top to bottom, left to right in
    /// the turn where they read upright: the one the detector's boxes lie flat in, or the opposite
    /// one when its largest lines read with a higher probability there.
    pub(crate) fn read_card_lines(&self, page: &RgbImage) -> Result<Vec<TextLine>, DocumentError> {
        let detected = self.detect(page, DET_MAX_SIDE, 1.0)?;
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
        read.extend(self.read_boxes(turned_page(page, &mut pages, quarter), &boxes[probed..])?);
        Ok(in_reading_order(read))
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
