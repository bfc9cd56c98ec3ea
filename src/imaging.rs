//! Image decoding with limits: format sniffed from the bytes, size and pixel caps checked before
//! any large allocation, EXIF orientation applied (phone selfies are often stored rotated).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    pub max_bytes: u64,
    pub max_pixels: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("unsupported image format")]
    UnsupportedFormat,
    #[error("image is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("image is {width}x{height} pixels; {reason}")]
    BadDimensions { width: u32, height: u32, reason: &'static str },
    #[error("image data is corrupt or truncated")]
    Corrupt,
}

/// The three formats we accept, recognized by their magic bytes only.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

/// Smallest side we accept: nothing useful can be read from a smaller image.
pub const MIN_SIDE: u32 = 16;

/// Decodes `bytes` into an upright RGB image, or says why not. CPU-bound: call off the runtime.
pub fn decode(bytes: &[u8], limits: ImageLimits) -> Result<RgbImage, ImageError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ImageError::TooLarge { limit: limits.max_bytes });
    }
    let format = sniff(bytes).ok_or(ImageError::UnsupportedFormat)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    // Each side alone must fit the pixel budget; the product is checked below from the header.
    let side_cap = u32::try_from(limits.max_pixels.min(u32::MAX as u64)).unwrap_or(u32::MAX);
    decoder_limits.max_image_width = Some(side_cap);
    decoder_limits.max_image_height = Some(side_cap);
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4).saturating_add(64 << 20));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(map_decode_error)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(map_decode_error)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

pub fn check_dimensions(width: u32, height: u32, limits: ImageLimits) -> Result<(), ImageError> {
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(ImageError::BadDimensions {
            width,
            height,
            reason: "each side must be at least 16 pixels",
        });
    }
    if (width as u64) * (height as u64) > limits.max_pixels {
        return Err(ImageError::BadDimensions { width, height, reason: "too many pixels" });
    }
    Ok(())
}

fn map_decode_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => {
            ImageError::BadDimensions { width: 0, height: 0, reason: "exceeds the decoder limits" }
        }
        image::ImageError::Unsupported(_) => ImageError::UnsupportedFormat,
        _ => ImageError::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ImageLimits = ImageLimits { max_bytes: 15_000_000, max_pixels: 50_000_000 };

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128])))
    }

    #[test]
    fn sniffs_the_three_formats_and_nothing_else() {
        let img = gradient(32, 20);
        assert_eq!(sniff(&encode(&img, ImageFormat::Png)), Some(ImageFormat::Png));
        assert_eq!(sniff(&encode(&img, ImageFormat::Jpeg)), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(&encode(&img, ImageFormat::WebP)), Some(ImageFormat::WebP));
        assert_eq!(sniff(b"GIF89a......"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn decodes_each_format_with_its_size() {
        let img = gradient(40, 24);
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let decoded = decode(&encode(&img, format), LIMITS).unwrap();
            assert_eq!(decoded.dimensions(), (40, 24), "{format:?}");
        }
    }

    #[test]
    fn rejects_what_it_should() {
        let png = encode(&gradient(40, 24), ImageFormat::Png);
        assert_eq!(decode(b"not an image", LIMITS), Err(ImageError::UnsupportedFormat));
        assert_eq!(
            decode(&png, ImageLimits { max_bytes: 10, ..LIMITS }),
            Err(ImageError::TooLarge { limit: 10 })
        );
        assert_eq!(decode(&png[..png.len() / 2], LIMITS), Err(ImageError::Corrupt));
        assert!(matches!(
            decode(&png, ImageLimits { max_pixels: 100, ..LIMITS }),
            Err(ImageError::BadDimensions { .. })
        ));
        let tiny = encode(&gradient(8, 8), ImageFormat::Png);
        assert!(matches!(decode(&tiny, LIMITS), Err(ImageError::BadDimensions { .. })));
    }

    #[test]
    fn a_small_file_declaring_a_huge_bitmap_is_refused_before_allocation() {
        // A valid PNG header claiming 100000 x 100000 pixels, with no pixel data behind it.
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // A few bytes of (truncated) pixel data, so the header parses as a real file would.
        let idat = b"IDAT\x78\x9c\x63\x60";
        png.extend_from_slice(&4u32.to_be_bytes());
        png.extend_from_slice(idat);
        png.extend_from_slice(&crc32(idat).to_be_bytes());
        assert!(png.len() < 100);
        assert!(matches!(decode(&png, LIMITS), Err(ImageError::BadDimensions { .. })));
    }

    #[test]
    fn exif_orientation_is_applied() {
        // JPEG 40x24 with an EXIF APP1 segment saying "rotate 90° clockwise" (orientation 6).
        let jpeg = encode(&gradient(40, 24), ImageFormat::Jpeg);
        let exif: Vec<u8> = {
            let mut tiff = Vec::new();
            tiff.extend_from_slice(b"MM\x00\x2a\x00\x00\x00\x08"); // big-endian TIFF header, IFD at 8
            tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
            tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
            tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
            tiff.extend_from_slice(&1u32.to_be_bytes()); // count
            tiff.extend_from_slice(&[0, 6, 0, 0]); // value 6
            tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
            let mut seg = b"Exif\x00\x00".to_vec();
            seg.extend_from_slice(&tiff);
            seg
        };
        let mut rotated = jpeg[..2].to_vec();
        rotated.extend_from_slice(&[0xFF, 0xE1]);
        rotated.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        rotated.extend_from_slice(&exif);
        rotated.extend_from_slice(&jpeg[2..]);
        let decoded = decode(&rotated, LIMITS).unwrap();
        assert_eq!(decoded.dimensions(), (24, 40));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
