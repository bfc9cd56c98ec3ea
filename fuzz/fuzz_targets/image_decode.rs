//! Image decoding with limits (the server's own limits, scaled down so the fuzzer stays fast).
#![no_main]
use idverify::imaging::{ImageLimits, MIN_SIDE, decode};
use libfuzzer_sys::fuzz_target;

const LIMITS: ImageLimits = ImageLimits { max_bytes: 1 << 20, max_pixels: 1 << 22 };

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode(data, LIMITS) {
        let (w, h) = img.dimensions();
        assert!(w >= MIN_SIDE && h >= MIN_SIDE && (w as u64) * (h as u64) <= LIMITS.max_pixels);
    }
});
