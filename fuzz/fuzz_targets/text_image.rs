//! Text image values: base64 (both alphabets, data: URLs) and s3:// references.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = idverify::http::input::decode_base64(text);
    let _ = idverify_objects::S3Ref::parse(text);
    match idverify::http::input::parse_text_image("image", text, 1 << 16) {
        Ok(idverify::verify::ImageInput::Bytes(b)) => assert!(!b.is_empty() && b.len() <= 1 << 16),
        Ok(idverify::verify::ImageInput::S3(_)) => assert!(text.trim().starts_with("s3://")),
        Err(e) => assert!(matches!(e.code(), "invalid_base64" | "image_too_large" | "s3_key_forbidden")),
    }
});
