//! Every text line of an upright card front, for the visual-zone parser ([`crate::viz`]).
//!
//! One detector pass over the whole page at the full size (card text is small next to the page),
//! then each detected box read on its own with the Latin recognizer. The detector's boxes are used
//! as they are, not grouped into rows: on a card, a gap wide enough to split two boxes separates
//! two columns (`SEXE / Sex` and `NATIONALITÉ / Nationality`), which the parser must see apart.

use image::RgbImage;

use super::geometry::RotRect;
use super::reading::{MAX_CROP_WIDTH, crop_rect, ctc_greedy};
use super::{DET_MAX_SIDE, MrzReader};
use crate::DocumentError;
use crate::viz::TextLine;

/// At most this many boxes are read (the largest); a card front has about 15 to 40.
const MAX_LINES: usize = 48;
/// Boxes lower than this (page pixels) hold no legible text.
const MIN_HEIGHT: f32 = 6.0;
/// Boxes steeper than this (radians) are not read: the visual zone is read on upright fronts only.
const MAX_ANGLE: f32 = 0.35;

/// A box of one or two characters (`F` under `SEXE / Sex`) is taller than wide, so its principal
/// axis is vertical: read it across instead.
fn upright_short_box(b: RotRect) -> RotRect {
    if b.angle.abs() > std::f32::consts::FRAC_PI_4 && b.len < 1.5 * b.h {
        let angle = b.angle - std::f32::consts::FRAC_PI_2.copysign(b.angle);
        return RotRect { len: b.h, h: b.len, angle, ..b };
    }
    b
}

impl MrzReader {
    /// The text lines of `page` (upright), top to bottom, left to right.
    pub(crate) fn read_text_lines(&self, page: &RgbImage) -> Result<Vec<TextLine>, DocumentError> {
        let (w, h) = (page.width() as f32, page.height() as f32);
        let mut boxes: Vec<RotRect> = self
            .detect(page, DET_MAX_SIDE, 1.0)?
            .into_iter()
            .map(upright_short_box)
            .filter(|b| b.h >= MIN_HEIGHT && b.len >= b.h * 0.3 && b.angle.abs() <= MAX_ANGLE)
            .collect();
        boxes.sort_by(|a, b| (b.len * b.h).total_cmp(&(a.len * a.h)));
        boxes.truncate(MAX_LINES);
        boxes.sort_by(|a, b| a.cy.total_cmp(&b.cy).then(a.cx.total_cmp(&b.cx)));
        let mut lines = Vec::with_capacity(boxes.len());
        for b in &boxes {
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
            lines.push(TextLine {
                text,
                confidence,
                left: ((b.cx - half_len) / w).clamp(0.0, 1.0),
                top: ((b.cy - half_h) / h).clamp(0.0, 1.0),
                right: ((b.cx + half_len) / w).clamp(0.0, 1.0),
                bottom: ((b.cy + half_h) / h).clamp(0.0, 1.0),
            });
        }
        Ok(lines)
    }
}
