//! The stages of a scan one at a time, as [`DocumentEngine::scan`] runs them, and counts of the
//! model runs scans made: for `idverify bench` (an operator's own hardware, no data set) and
//! `idverify eval mrz` (what a real scan is made of).

use image::RgbImage;

use crate::ocr::{BOTTOM_FRACTION, DET_FAST_SIDE, DET_MAX_SIDE, MRZ_MAX_CROP_WIDTH, REC_HEIGHT};
use crate::{DocumentEngine, DocumentError};

/// Model runs of the MRZ reader since the engine was loaded, their input sizes, and the CPU time
/// of the calling thread spent in them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OcrRuns {
    pub detector_runs: u64,
    /// Detector input pixels, summed over its runs.
    pub detector_pixels: u64,
    pub detector_cpu_ms: f64,
    pub recognizer_runs: u64,
    /// Widths of the recognizer's line crops (all `LINE_HEIGHT` high in a scan), summed.
    pub recognizer_columns: u64,
    pub recognizer_cpu_ms: f64,
}

impl OcrRuns {
    /// The runs made between `earlier` and `self`.
    pub fn since(&self, earlier: &OcrRuns) -> OcrRuns {
        OcrRuns {
            detector_runs: self.detector_runs - earlier.detector_runs,
            detector_pixels: self.detector_pixels - earlier.detector_pixels,
            detector_cpu_ms: self.detector_cpu_ms - earlier.detector_cpu_ms,
            recognizer_runs: self.recognizer_runs - earlier.recognizer_runs,
            recognizer_columns: self.recognizer_columns - earlier.recognizer_columns,
            recognizer_cpu_ms: self.recognizer_cpu_ms - earlier.recognizer_cpu_ms,
        }
    }
}

/// The text detector passes of an MRZ read, in the order the reader tries them (each only when
/// the ones before were not conclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorPass {
    /// The lower part of the page (see `BOTTOM_FRACTION`), longest side 640 px: where the MRZ of
    /// an upright page is.
    LowerPart,
    /// The whole page at 640 px.
    Page,
    /// The whole page at 960 px (small or skewed MRZ).
    PageFull,
}

impl DetectorPass {
    fn side_and_fraction(self) -> (u32, f32) {
        match self {
            DetectorPass::LowerPart => (DET_FAST_SIDE, BOTTOM_FRACTION),
            DetectorPass::Page => (DET_FAST_SIDE, 1.0),
            DetectorPass::PageFull => (DET_MAX_SIDE, 1.0),
        }
    }
}

/// Height of the line crops given to the recognizer.
pub const LINE_HEIGHT: u32 = REC_HEIGHT;
/// Widest MRZ line crop the recognizer gets in a scan (wider rows are squeezed to it).
pub const MRZ_LINE_MAX_WIDTH: u32 = MRZ_MAX_CROP_WIDTH;

impl DocumentEngine {
    /// Model runs of the MRZ reader since the engine was loaded.
    pub fn ocr_runs(&self) -> OcrRuns {
        self.ocr.runs()
    }

    /// One text detector pass over `page` (decoded, upright), as a scan runs it: the number of
    /// text boxes found.
    pub fn detect_text(&self, page: &RgbImage, pass: DetectorPass) -> Result<usize, DocumentError> {
        let (side, fraction) = pass.side_and_fraction();
        self.ocr.count_text_boxes(page, side, fraction)
    }

    /// One recognizer run on an upright line crop ([`LINE_HEIGHT`] high in a scan): the text
    /// read, in the MRZ alphabet.
    pub fn recognize_line(&self, crop: &RgbImage) -> Result<String, DocumentError> {
        self.ocr.recognize_crop(crop)
    }

    /// One run of the visual-zone recognizer (Latin script) on an upright line crop: the text read.
    pub fn recognize_card_line(&self, crop: &RgbImage) -> Result<String, DocumentError> {
        self.ocr.recognize_card_crop(crop)
    }
}
