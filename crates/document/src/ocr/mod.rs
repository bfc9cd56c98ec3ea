//! MRZ reading with PP-OCRv6 small: DB text detection on a reduced page, grouping of the detected
//! boxes into text rows along their own direction, CTC recognition of the long thin rows only
//! (cropped from the full-resolution page), then fitting to the ICAO layouts.
//!
//! [`MrzReader::read`] tries the page orientations and detector passes; each pass goes through
//! `detect` (the page to rotated text boxes), `layout::group_rows` (boxes to rows), `reading`
//! (crops recognized, second reads) and `layout` (which rows are the MRZ, and its layout).

mod detect;
mod geometry;
mod layout;
mod lines;
mod reading;

pub(crate) use reading::{MRZ_MAX_CROP_WIDTH, REC_HEIGHT};

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use idverify_onnx::SessionPool;
use image::RgbImage;
use ndarray::Array4;

use crate::mrz::MrzRecord;
use crate::{DocumentEngineConfig, DocumentError};
use geometry::{RotRect, is_long_row, turn_rect, turned_page};
use layout::{better_outcome, group_rows, is_conclusive};
use reading::{PageRows, ReadRow};

/// The detector with its subnormal weights flushed to zero by `scripts/flush_subnormals.py`
/// (same output; subnormals are slow on Intel cores, see `idverify_onnx::FlushDenormals`).
pub const DET_MODEL: &str = "PP-OCRv6_det_small_flushed.onnx";
/// The int8 build of `PP-OCRv6_rec_small.onnx` made by `scripts/quantize_rec.py`: convolution
/// biases folded and GELUs fused (so that ONNX Runtime does not run them apart in float),
/// convolutions quantized, head cut to the CTC blank, the 37 MRZ characters and the space (so its
/// softmax, and every probability below, is over those classes only).
pub const REC_MODEL: &str = "PP-OCRv6_rec_small_int8_fused.onnx";
/// The same int8 recognizer with its head cut to the Latin script instead (ASCII letters, digits
/// and punctuation, the accented letters of Latin-1 and Latin Extended-A, the space): what the
/// visual zone of a European or American card front is printed in.
pub const VIZ_REC_MODEL: &str = "PP-OCRv6_rec_small_int8_latin.onnx";

/// Longest side of the page given to the detector (multiple of 32) in the quick first pass, and
/// in the full pass that runs when the quick one is not conclusive (small or skewed MRZ).
pub(crate) const DET_FAST_SIDE: u32 = 640;
pub(crate) const DET_MAX_SIDE: u32 = 960;
/// The first detector pass covers only this lower part of the upright page, where the MRZ is
/// (the MRZ dev set: 0.4 instead of 0.5 cut the median scan CPU by a tenth with the same reads;
/// one page more of 26 needed the whole-page pass; BENCHMARKS.md, issue 17).
pub(crate) const BOTTOM_FRACTION: f32 = 0.4;
/// Rows steeper than this (radians) are read after a quarter turn of the page, not as they are.
const MAX_ROW_ANGLE: f32 = 0.8;

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
    /// The visual-zone recognizer and its classes (every class but the blank).
    viz_rec: SessionPool,
    viz_classes: Vec<(usize, char)>,
    runs: RunCounters,
}

/// Model runs since the reader was loaded, with their input sizes and the CPU time of the calling
/// thread around them: what scans cost, for `eval mrz` and `idverify bench`.
#[derive(Default)]
struct RunCounters {
    detector_runs: AtomicU64,
    detector_pixels: AtomicU64,
    detector_cpu_us: AtomicU64,
    recognizer_runs: AtomicU64,
    recognizer_columns: AtomicU64,
    recognizer_cpu_us: AtomicU64,
}

/// Runs `f`, returning its result and the CPU time it took on this thread in µs.
pub(crate) fn cpu_timed<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let start = crate::eval::thread_cpu_ms();
    let r = f();
    let us = match (start, crate::eval::thread_cpu_ms()) {
        (Some(a), Some(b)) => ((b - a) * 1000.0).max(0.0) as u64,
        _ => 0,
    };
    (r, us)
}

impl RunCounters {
    fn count_detector(&self, pixels: u64, cpu_us: u64) {
        self.detector_runs.fetch_add(1, Ordering::Relaxed);
        self.detector_pixels.fetch_add(pixels, Ordering::Relaxed);
        self.detector_cpu_us.fetch_add(cpu_us, Ordering::Relaxed);
    }

    fn count_recognizer(&self, columns: u64, cpu_us: u64) {
        self.recognizer_runs.fetch_add(1, Ordering::Relaxed);
        self.recognizer_columns.fetch_add(columns, Ordering::Relaxed);
        self.recognizer_cpu_us.fetch_add(cpu_us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> crate::OcrRuns {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::OcrRuns {
            detector_runs: get(&self.detector_runs),
            detector_pixels: get(&self.detector_pixels),
            detector_cpu_ms: get(&self.detector_cpu_us) as f64 / 1000.0,
            recognizer_runs: get(&self.recognizer_runs),
            recognizer_columns: get(&self.recognizer_columns),
            recognizer_cpu_ms: get(&self.recognizer_cpu_us) as f64 / 1000.0,
        }
    }
}

/// A recognizer's classes from its metadata: the CTC blank (class 0), the dictionary, a space.
fn classes_of(rec: &SessionPool) -> Result<Vec<String>, DocumentError> {
    let dictionary = rec.with(|s| -> Result<String, DocumentError> {
        let meta = s.metadata()?;
        meta.custom("character")
            .ok_or_else(|| DocumentError::Inference("recognizer metadata has no `character` key".into()))
    })?;
    let mut chars: Vec<String> = vec![String::new()];
    chars.extend(dictionary.lines().map(str::to_string));
    chars.push(" ".into());
    Ok(chars)
}

/// Whether an MRZ was found in any orientation.
fn any_found(outcomes: &[MrzOutcome]) -> bool {
    outcomes.iter().any(|o| matches!(o, MrzOutcome::Found(_)))
}

impl MrzReader {
    pub fn load(cfg: &DocumentEngineConfig) -> Result<MrzReader, DocumentError> {
        let pool = |model| SessionPool::load(&cfg.models_dir, model, cfg.sessions, cfg.intra_threads);
        let det = pool(DET_MODEL)?;
        let rec = pool(REC_MODEL)?;
        let chars = classes_of(&rec)?;
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
        let viz_rec = pool(VIZ_REC_MODEL)?;
        let viz_classes: Vec<(usize, char)> = classes_of(&viz_rec)?
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(i, s)| {
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => Some((i, c)),
                    _ => None,
                }
            })
            .collect();
        Ok(MrzReader {
            det,
            rec,
            mrz_classes,
            num_classes: chars.len(),
            viz_rec,
            viz_classes,
            runs: RunCounters::default(),
        })
    }

    /// The model runs made so far.
    pub fn runs(&self) -> crate::OcrRuns {
        self.runs.snapshot()
    }

    /// One detector run on the lower `fraction` of `page` scaled to `max_side`: the number of
    /// text boxes.
    pub(crate) fn count_text_boxes(
        &self,
        page: &RgbImage,
        max_side: u32,
        fraction: f32,
    ) -> Result<usize, DocumentError> {
        Ok(self.detect(page, max_side, fraction)?.len())
    }

    /// One recognizer run on an upright line crop (any size; scans give it `REC_HEIGHT` high).
    pub(crate) fn recognize_crop(&self, crop: &RgbImage) -> Result<String, DocumentError> {
        Ok(self.recognize(crop)?.0)
    }

    /// One visual-zone recognizer run on an upright line crop.
    pub(crate) fn recognize_card_crop(&self, crop: &RgbImage) -> Result<String, DocumentError> {
        let (steps, classes, data) = self.run_recognizer(&self.viz_rec, crop)?;
        Ok(reading::ctc_greedy(&data, steps, classes, &self.viz_classes).0)
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
