//! PDF417 decoding with `rxing`: several passes over differently prepared images, because photos of
//! licences vary in contrast and module size.
//!
//! Determinism: the published rxing 0.9.3 counts votes per codeword in
//! `pdf417::decoder::BarcodeValue`, a `std::collections::HashMap`, and returns tied values in that
//! map's iteration order, which std seeds at random per thread. The order decides which row/column
//! counts win a tie and which combinations of ambiguous codewords its error correction tries, so a
//! damaged symbol decoded in one process and not in the next. The workspace builds a vendored
//! rxing whose `BarcodeValue` is a `BTreeMap` (vendor/rxing/PATCHED.md);
//! tests/determinism.rs decodes the dev set in separate processes and demands the same results.

use std::collections::HashSet;

use image::{GrayImage, RgbImage, imageops::FilterType};
use rxing::common::{GlobalHistogramBinarizer, HybridBinarizer};
use rxing::{
    BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource, MultiFormatReader, RXingResult,
    RXingResultMetadataType, RXingResultMetadataValue, Reader, multi::MultipleBarcodeReader,
};

/// A decoded PDF417 symbol.
#[derive(Clone, Debug)]
pub struct Pdf417Symbol {
    /// Decoded text (byte-compacted data comes out as ISO-8859-1 characters).
    pub text: String,
    /// Macro PDF417 segment index, when the symbol is one part of a structured append.
    pub segment_index: Option<usize>,
}

/// Decodes the first PDF417 symbol found, or `None`.
pub fn decode_pdf417(image: &RgbImage) -> Option<String> {
    decode_pdf417_symbol(image).map(|s| s.text)
}

/// Like [`decode_pdf417`], with the Macro PDF417 segment index.
pub fn decode_pdf417_symbol(image: &RgbImage) -> Option<Pdf417Symbol> {
    if image.width() == 0 || image.height() == 0 {
        return None;
    }
    // Pass 1: zxing's own luminance (average-ish), pass 2: Rec. 709 grayscale, pass 3: upscaled
    // (small modules), pass 4: global histogram binarizer (uneven backgrounds confuse the hybrid one).
    let averaged = GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let p = image.get_pixel(x, y).0;
        image::Luma([((p[0] as u32 + 2 * p[1] as u32 + p[2] as u32) / 4) as u8])
    });
    if let Some(r) = decode_gray(&averaged, false) {
        return Some(r);
    }
    let gray = image::imageops::grayscale(image);
    if let Some(r) = decode_gray(&gray, false) {
        return Some(r);
    }
    if let Some(r) = decode_gray(&gray, true) {
        return Some(r);
    }
    let longest = gray.width().max(gray.height());
    if longest <= 2000 {
        let up = image::imageops::resize(&gray, gray.width() * 2, gray.height() * 2, FilterType::Triangle);
        if let Some(r) = decode_gray(&up, false) {
            return Some(r);
        }
    }
    None
}

/// Every PDF417 symbol in the image (several symbols of a Macro PDF417 set may share one page).
pub fn decode_pdf417_all(image: &RgbImage) -> Vec<Pdf417Symbol> {
    if image.width() == 0 || image.height() == 0 {
        return Vec::new();
    }
    let gray = image::imageops::grayscale(image);
    let found = Luma8LuminanceSource::new(gray.as_raw().clone(), gray.width(), gray.height())
        .ok()
        .and_then(|source| {
            rxing::pdf417::PDF417Reader
                .decode_multiple_with_hints(&mut BinaryBitmap::new(HybridBinarizer::new(source)), &hints())
                .ok()
        })
        .unwrap_or_default();
    if found.is_empty() {
        decode_pdf417_symbol(image).into_iter().collect()
    } else {
        found.iter().map(symbol).collect()
    }
}

fn hints() -> DecodeHints {
    DecodeHints {
        TryHarder: Some(true),
        PossibleFormats: Some(HashSet::from([BarcodeFormat::PDF_417])),
        ..Default::default()
    }
}

fn decode_gray(gray: &GrayImage, global_binarizer: bool) -> Option<Pdf417Symbol> {
    let source = Luma8LuminanceSource::new(gray.as_raw().clone(), gray.width(), gray.height()).ok()?;
    let mut reader = MultiFormatReader::default();
    let result = if global_binarizer {
        reader.decode_with_hints(&mut BinaryBitmap::new(GlobalHistogramBinarizer::new(source)), &hints())
    } else {
        reader.decode_with_hints(&mut BinaryBitmap::new(HybridBinarizer::new(source)), &hints())
    };
    result.ok().map(|r| symbol(&r))
}

fn symbol(r: &RXingResult) -> Pdf417Symbol {
    let segment_index = match r.getRXingResultMetadata().get(&RXingResultMetadataType::PDF417_EXTRA_METADATA)
    {
        Some(RXingResultMetadataValue::Pdf417ExtraMetadata(m)) => Some(m.getSegmentIndex()),
        _ => None,
    };
    Pdf417Symbol { text: r.getText().to_string(), segment_index }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_images_decode_to_nothing() {
        assert!(decode_pdf417(&RgbImage::new(0, 0)).is_none());
        assert!(decode_pdf417(&RgbImage::from_pixel(64, 32, image::Rgb([255, 255, 255]))).is_none());
    }
}
