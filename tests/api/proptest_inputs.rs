//! Property tests for the request decoders: whatever the bytes, they never panic and always give
//! a documented result (a value, or an error with one of the documented 400/403 codes); base64 in
//! every accepted form round-trips. Case counts keep the file at a few seconds in debug.

use std::io::Cursor;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use idverify::error::ApiError;
use idverify::http::input::{FieldValue, decode_base64, parse_json, parse_text_image};
use idverify::imaging::{self, ImageError, ImageLimits, MIN_SIDE};
use idverify::verify::ImageInput;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use proptest::prelude::*;

const MAX_BYTES: u64 = 4096;
const LIMITS: ImageLimits = ImageLimits { max_bytes: 1 << 20, max_pixels: 1 << 20 };

/// The codes `parse_json` may answer with.
const JSON_CODES: &[&str] = &["invalid_json", "duplicate_field", "invalid_field"];
/// The codes `parse_text_image` may answer with.
const TEXT_IMAGE_CODES: &[&str] = &["invalid_base64", "image_too_large", "s3_key_forbidden"];

fn assert_documented(error: &ApiError, allowed: &[&str]) {
    assert!(allowed.contains(&error.code()), "undocumented code {} ({error})", error.code());
    let status = error.status().as_u16();
    assert!(status == 400 || status == 403, "{} has status {status}", error.code());
    assert!(!error.to_string().is_empty());
}

/// JSON-ish text: fragments of JSON syntax, field names and values glued together.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("1e999".to_string()),
        Just("-0".to_string()),
        Just("\"image\"".to_string()),
        Just("\"documentType\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("\"\\u0000\"".to_string()),
        "\"[a-zA-Z0-9+/=_-]{0,12}\"",
        "[ \t\r\n]{0,2}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(token, 0..40).prop_map(|parts| parts.concat())
}

/// A JSON object with string or null values (what a client should send), possibly duplicated keys.
fn json_object() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    prop::collection::vec(("[a-zA-Z]{1,8}", prop::option::of(any::<String>())), 0..6)
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn seeds() -> Vec<Vec<u8>> {
    let img =
        DynamicImage::ImageRgb8(RgbImage::from_fn(24, 20, |x, y| Rgb([(x * 9) as u8, (y * 11) as u8, 77])));
    vec![encode(&img, ImageFormat::Png), encode(&img, ImageFormat::Jpeg), encode(&img, ImageFormat::WebP)]
}

/// A mutation of a valid image: byte overwrites (biased to the header), truncation, insertion.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Field32(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0usize..64, any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (0usize..4096, any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (0usize..4096).prop_map(Mutation::Truncate),
        (0usize..4096, prop::collection::vec(any::<u8>(), 1..32)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (0usize..64, prop_oneof![Just(0u32), Just(u32::MAX), Just(0x7fff_ffff), Just(65_535), any::<u32>()])
            .prop_map(|(i, v)| Mutation::Field32(i, v)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Set(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % len] = *b;
                }
            }
            Mutation::Truncate(n) => bytes.truncate(n % len),
            Mutation::Insert(i, v) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Field32(i, v) => {
                if bytes.len() >= 4 {
                    let at = i % (bytes.len() - 3);
                    bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    bytes
}

fn check_decode(bytes: &[u8], limits: ImageLimits) {
    match imaging::decode(bytes, limits) {
        Ok(img) => {
            let (w, h) = img.dimensions();
            assert!(w >= MIN_SIDE && h >= MIN_SIDE, "{w}x{h} passed the minimum side");
            assert!(w as u64 * h as u64 <= limits.max_pixels, "{w}x{h} passed the pixel cap");
            assert!(bytes.len() as u64 <= limits.max_bytes);
        }
        Err(ImageError::TooLarge { .. }) => assert!(bytes.len() as u64 > limits.max_bytes),
        Err(ImageError::UnsupportedFormat) => {}
        Err(ImageError::Corrupt) => assert!(imaging::sniff(bytes).is_some()),
        Err(ImageError::BadDimensions { .. }) => assert!(imaging::sniff(bytes).is_some()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_json_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = parse_json(&bytes) {
            assert_documented(&e, JSON_CODES);
        }
    }

    #[test]
    fn parse_json_never_panics_on_jsonish_text(text in jsonish()) {
        if let Err(e) = parse_json(text.as_bytes()) {
            assert_documented(&e, JSON_CODES);
        }
    }

    #[test]
    fn parse_json_keeps_string_fields_and_refuses_duplicates(members in json_object()) {
        let body = format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut names: Vec<&String> = members.iter().map(|(k, _)| k).collect();
        names.sort();
        let has_duplicates = names.windows(2).any(|w| w[0] == w[1]);
        match parse_json(body.as_bytes()) {
            Ok(mut fields) => {
                prop_assert!(!has_duplicates, "duplicates accepted: {body}");
                for (k, v) in &members {
                    // null means absent
                    prop_assert_eq!(fields.take(k), v.clone().map(FieldValue::Text));
                }
            }
            Err(e) => {
                prop_assert!(has_duplicates, "refused {body}: {e}");
                prop_assert_eq!(e.code(), "duplicate_field");
            }
        }
    }

    #[test]
    fn decode_base64_never_panics(text in "[ -~\t\r\n]{0,200}|\\PC{0,64}") {
        let _ = decode_base64(&text);
    }

    #[test]
    fn base64_round_trips_in_every_accepted_form(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        alphabet in 0usize..4,
        wrap in prop::option::of(1usize..80),
    ) {
        let engine = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD][alphabet];
        let mut text = engine.encode(&bytes);
        if let Some(width) = wrap {
            // MIME-style line breaks are ignored.
            text = text.as_bytes().chunks(width).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\r\n");
        }
        prop_assert_eq!(decode_base64(&text), Some(bytes));
    }

    #[test]
    fn parse_text_image_gives_a_documented_result(text in "\\PC{0,120}|s3://[ -~]{0,80}|data:[ -~]{0,40}") {
        check_text_image(&text)?;
    }

    #[test]
    fn parse_text_image_accepts_base64_images_within_the_limit(bytes in prop::collection::vec(any::<u8>(), 1..6000), url in any::<bool>()) {
        let text = if url { format!("data:image/png;base64,{}", STANDARD.encode(&bytes)) } else { URL_SAFE_NO_PAD.encode(&bytes) };
        match parse_text_image("image", &text, MAX_BYTES) {
            Ok(ImageInput::Bytes(b)) => {
                prop_assert!(bytes.len() as u64 <= MAX_BYTES);
                prop_assert_eq!(&b[..], &bytes[..]);
            }
            Ok(other) => prop_assert!(false, "unexpected {other:?}"),
            Err(e) => {
                prop_assert!(bytes.len() as u64 > MAX_BYTES, "refused a {}-byte image: {e}", bytes.len());
                prop_assert_eq!(e.code(), "image_too_large");
            }
        }
    }
}

fn check_text_image(text: &str) -> Result<(), TestCaseError> {
    match parse_text_image("image", text, MAX_BYTES) {
        Ok(ImageInput::Bytes(b)) => {
            prop_assert!(!b.is_empty() && b.len() as u64 <= MAX_BYTES);
            prop_assert!(!text.trim().starts_with("s3://"));
        }
        Ok(ImageInput::S3(r)) => {
            prop_assert!(text.trim().starts_with("s3://"));
            prop_assert!(!r.bucket.is_empty() && !r.key.is_empty());
        }
        Err(e) => assert_documented(&e, TEXT_IMAGE_CODES),
    }
    Ok(())
}

proptest! {
    // Decoding is the slow part: fewer cases.
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_decode(&bytes, LIMITS);
    }

    #[test]
    fn decode_never_panics_on_magic_plus_garbage(magic in 0usize..3, tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = match magic {
            0 => vec![0xFF, 0xD8, 0xFF],
            1 => b"\x89PNG\r\n\x1a\n".to_vec(),
            _ => b"RIFF\x00\x00\x00\x00WEBP".to_vec(),
        };
        bytes.extend_from_slice(&tail);
        check_decode(&bytes, LIMITS);
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_images(
        seed in 0usize..3,
        mutations in prop::collection::vec(mutation(), 1..6),
        small_limits in any::<bool>(),
    ) {
        let bytes = apply(seeds()[seed].clone(), &mutations);
        // Tight limits exercise the refusal paths on the same inputs.
        let limits = if small_limits { ImageLimits { max_bytes: 600, max_pixels: 400 } } else { LIMITS };
        check_decode(&bytes, limits);
    }
}

#[test]
fn unmutated_seeds_decode() {
    for (i, seed) in seeds().iter().enumerate() {
        assert_eq!(imaging::decode(seed, LIMITS).map(|img| img.dimensions()), Ok((24, 20)), "seed {i}");
    }
}
