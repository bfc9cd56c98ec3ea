//! Request bodies in, validated image inputs out.
//!
//! Accepted bodies: `multipart/form-data` (a part is either an image file — it has a filename or
//! an `image/*` / `application/octet-stream` content type — or a text field) and
//! `application/json` (an object whose values are strings). A text value is either an S3
//! reference, recognized only by its `s3://` scheme (the form `POST /v1/uploads` returns), or a
//! base64 image (standard or URL-safe alphabet, padding optional, optional `data:image/...;base64,`
//! prefix). Nothing is guessed from a failed decode.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use idverify_objects::S3Ref;
use sha2::{Digest, Sha256};

use super::AppState;
use crate::error::ApiError;
use crate::verify::ImageInput;

/// One field of a request body as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    File(Bytes),
    Text(String),
    /// A JSON value that is not a string (its JSON type). Kept, not refused while parsing, so that
    /// an unknown field is reported as unknown whatever its value.
    NotText(&'static str),
}

/// The fields of a request body, each name at most once.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, FieldValue)>);

impl Fields {
    fn push(&mut self, name: String, value: FieldValue) -> Result<(), ApiError> {
        if self.0.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::invalid(
                "duplicate_field",
                format!("field `{name}` appears more than once"),
            ));
        }
        self.0.push((name, value));
        Ok(())
    }

    /// Refuses any field not in `allowed` (a typo should not silently fall back to a default).
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            Some((name, _)) => Err(ApiError::invalid(
                "unknown_field",
                format!("unknown field `{}`; expected {}", truncate(name, 40), allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    pub fn take(&mut self, name: &str) -> Option<FieldValue> {
        let index = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(index).1)
    }

    pub fn image(&mut self, name: &str, max_bytes: u64) -> Result<ImageInput, ApiError> {
        match self.take(name) {
            None => Err(ApiError::invalid("missing_field", format!("field `{name}` is required"))),
            Some(FieldValue::File(bytes)) => {
                if bytes.len() as u64 > max_bytes {
                    return Err(image_too_large(max_bytes));
                }
                Ok(ImageInput::Bytes(bytes))
            }
            Some(FieldValue::Text(text)) => parse_text_image(name, &text, max_bytes),
            Some(FieldValue::NotText(_)) => Err(not_a_string(name)),
        }
    }

    pub fn optional_text(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(FieldValue::Text(t)) => Ok(Some(t)),
            Some(FieldValue::File(_)) => {
                Err(ApiError::invalid("invalid_field", format!("field `{name}` must be text, not a file")))
            }
            Some(FieldValue::NotText(_)) => Err(not_a_string(name)),
        }
    }

    /// What the request means, for `Idempotency-Key`: the route, then each field's name, kind and
    /// the SHA-256 of its value, in name order, with images (the fields named in `image_fields`)
    /// taken as their decoded bytes. The same images sent as multipart with any boundary, or as
    /// JSON base64 with any whitespace, key order or alphabet, are the same request, and a
    /// multipart file and the base64 of the same bytes are too. An S3 reference counts by its key.
    pub fn fingerprint(
        &self,
        route: &str,
        image_fields: &[&str],
        max_image_bytes: u64,
    ) -> Result<String, ApiError> {
        let mut entries = Vec::with_capacity(self.0.len());
        for (name, value) in &self.0 {
            let (kind, digest) = match value {
                FieldValue::File(bytes) => ("image", Sha256::digest(bytes)),
                FieldValue::Text(text) if image_fields.contains(&name.as_str()) => {
                    match parse_text_image(name, text, max_image_bytes)? {
                        ImageInput::Bytes(bytes) => ("image", Sha256::digest(&bytes)),
                        ImageInput::S3(reference) => {
                            ("s3", Sha256::digest(format!("{}/{}", reference.bucket, reference.key)))
                        }
                    }
                }
                FieldValue::Text(text) => ("text", Sha256::digest(text.as_bytes())),
                FieldValue::NotText(json_type) => ("json", Sha256::digest(json_type.as_bytes())),
            };
            entries.push((name.as_str(), kind, digest));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut hasher = Sha256::new();
        hasher.update(b"idverify-request-v2\0");
        hasher.update(route.as_bytes());
        for (name, kind, digest) in entries {
            hasher.update([0]);
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(kind.as_bytes());
            hasher.update([0]);
            hasher.update(digest);
        }
        Ok(format!("{:x}", hasher.finalize()))
    }
}

fn not_a_string(name: &str) -> ApiError {
    ApiError::invalid("invalid_field", format!("field `{}` must be a string", truncate(name, 40)))
}

fn image_too_large(max_bytes: u64) -> ApiError {
    ApiError::ImageTooLarge { limit_bytes: max_bytes }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Classifies a text value: `s3://` reference or base64 image.
pub fn parse_text_image(name: &str, text: &str, max_bytes: u64) -> Result<ImageInput, ApiError> {
    let text = text.trim();
    if text.starts_with("s3://") {
        // A malformed or path-tricking reference gets the same answer as another org's key.
        return S3Ref::parse(text).map(ImageInput::S3).ok_or(ApiError::S3Forbidden);
    }
    let payload = strip_data_url(text);
    // Cheap early refusal: base64 carries 3 bytes per 4 characters.
    if (payload.len() as u64 / 4).saturating_mul(3) > max_bytes + 3 {
        return Err(image_too_large(max_bytes));
    }
    let bytes = decode_base64(payload).ok_or_else(|| {
        ApiError::invalid(
            "invalid_base64",
            format!("field `{name}` is neither base64 image data nor an s3:// reference"),
        )
    })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("invalid_base64", format!("field `{name}` is empty")));
    }
    if bytes.len() as u64 > max_bytes {
        return Err(image_too_large(max_bytes));
    }
    Ok(ImageInput::Bytes(Bytes::from(bytes)))
}

fn strip_data_url(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix("data:")
        && let Some(comma) = rest.find(',')
        && rest[..comma].ends_with(";base64")
    {
        return &rest[comma + 1..];
    }
    text
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// Decodes standard or URL-safe base64, padded or not, ignoring line breaks.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String;
    let text = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        compact = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        compact.as_str()
    } else {
        text
    };
    let url_safe = text.bytes().any(|b| b == b'-' || b == b'_');
    let standard = text.bytes().any(|b| b == b'+' || b == b'/');
    match (url_safe, standard) {
        (true, true) => None,
        (true, false) => URL_SAFE.decode(text).ok(),
        _ => STANDARD.decode(text).ok(),
    }
}

impl FromRequest<AppState> for Fields {
    type Rejection = ApiError;

    async fn from_request(mut req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // Already read by the idempotency middleware, to fingerprint the request.
        if let Some(fields) = req.extensions_mut().remove::<Fields>() {
            return Ok(fields);
        }
        Fields::read(req, state.max_image_bytes()).await
    }
}

impl Fields {
    /// Reads a multipart or JSON body into fields. Multipart parts are capped while they are
    /// read, so an oversized one is refused without being buffered whole.
    pub async fn read(req: Request, max_image_bytes: u64) -> Result<Fields, ApiError> {
        let content_type =
            req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let multipart = Multipart::from_request(req, &())
                .await
                .map_err(|e| ApiError::invalid("invalid_multipart", e.body_text()))?;
            read_multipart(multipart, max_image_bytes).await
        } else if content_type.starts_with("application/json") {
            let body = Bytes::from_request(req, &()).await.map_err(|e| body_error(&e.body_text()))?;
            parse_json(&body)
        } else {
            Err(ApiError::invalid(
                "unsupported_content_type",
                "Content-Type must be multipart/form-data or application/json",
            ))
        }
    }
}

fn body_error(text: &str) -> ApiError {
    if text.to_ascii_lowercase().contains("length limit") || text.contains("too large") {
        ApiError::invalid("body_too_large", "request body exceeds the size limit")
    } else {
        ApiError::invalid("invalid_body", "could not read the request body")
    }
}

async fn read_multipart(mut multipart: Multipart, max_image_bytes: u64) -> Result<Fields, ApiError> {
    let mut fields = Fields::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e.body_text())),
        };
        let name = field.name().unwrap_or("").to_string();
        if name.is_empty() {
            return Err(ApiError::invalid("invalid_multipart", "every part needs a name"));
        }
        let is_file = field.file_name().is_some()
            || field
                .content_type()
                .map(|ct| ct.starts_with("image/") || ct == "application/octet-stream")
                .unwrap_or(false);
        // A text field may hold base64 of a full-size image: 4/3 of the byte limit plus slack.
        let cap = if is_file { max_image_bytes } else { max_image_bytes / 3 * 4 + 1024 };
        let bytes = read_capped(field, cap).await?.ok_or_else(|| image_too_large(max_image_bytes))?;
        let value = if is_file {
            FieldValue::File(bytes)
        } else {
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::invalid("invalid_field", format!("field `{name}` is not valid UTF-8 text"))
            })?;
            FieldValue::Text(text)
        };
        fields.push(name, value)?;
    }
    Ok(fields)
}

/// Reads a part chunk by chunk; `None` as soon as it passes `cap` bytes.
async fn read_capped(
    mut field: axum::extract::multipart::Field<'_>,
    cap: u64,
) -> Result<Option<Bytes>, ApiError> {
    let mut buffer = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if (buffer.len() + chunk.len()) as u64 > cap {
                    return Ok(None);
                }
                buffer.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Some(Bytes::from(buffer))),
            Err(e) => return Err(multipart_error(&e.body_text())),
        }
    }
}

fn multipart_error(text: &str) -> ApiError {
    if text.to_ascii_lowercase().contains("limit") {
        ApiError::invalid("body_too_large", "request body exceeds the size limit")
    } else {
        ApiError::invalid("invalid_multipart", "the multipart body is malformed")
    }
}

pub fn parse_json(body: &[u8]) -> Result<Fields, ApiError> {
    let pairs: JsonPairs = serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_data() {
            "body must be a JSON object".to_string()
        } else {
            format!("body is not valid JSON: {}", e.classify_name())
        };
        ApiError::invalid("invalid_json", what)
    })?;
    let mut fields = Fields::default();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in pairs.0 {
        if !seen.insert(name.clone()) {
            return Err(ApiError::invalid(
                "duplicate_field",
                format!("field `{}` appears more than once", truncate(&name, 40)),
            ));
        }
        match value {
            serde_json::Value::String(s) => fields.push(name, FieldValue::Text(s))?,
            // null means "absent"
            serde_json::Value::Null => {}
            serde_json::Value::Bool(_) => fields.push(name, FieldValue::NotText("boolean"))?,
            serde_json::Value::Number(_) => fields.push(name, FieldValue::NotText("number"))?,
            serde_json::Value::Array(_) => fields.push(name, FieldValue::NotText("array"))?,
            serde_json::Value::Object(_) => fields.push(name, FieldValue::NotText("object"))?,
        }
    }
    Ok(fields)
}

/// A JSON object's members in order, duplicates kept (serde_json's map would keep only the last).
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    pairs.push((k, v));
                }
                Ok(JsonPairs(pairs))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end of input",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB15: u64 = 15_000_000;

    #[test]
    fn base64_in_every_accepted_form() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let standard = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert!(standard.contains('+') || standard.contains('/'));
        assert!(url.contains('-') || url.contains('_'));
        assert_eq!(decode_base64(&standard).unwrap(), bytes);
        assert_eq!(decode_base64(standard.trim_end_matches('=')).unwrap(), bytes);
        assert_eq!(decode_base64(&url).unwrap(), bytes);
        assert_eq!(decode_base64(&format!("{url}=")), decode_base64(&format!("{url}=")));
        let wrapped: String = standard
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        assert_eq!(decode_base64(&wrapped).unwrap(), bytes);
        assert!(decode_base64("a+b-").is_none(), "mixed alphabets are refused");
        assert!(decode_base64("not base64!").is_none());
    }

    #[test]
    fn data_url_prefix_is_accepted() {
        let input = parse_text_image("faceImage", "data:image/png;base64,iVBORw0KGgo=", MB15).unwrap();
        match input {
            ImageInput::Bytes(b) => assert_eq!(&b[..4], &[0x89, b'P', b'N', b'G']),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn s3_references_are_recognized_by_scheme_only() {
        match parse_text_image("documentImage", "s3://bucket/orgs/o1/uploads/abc", MB15).unwrap() {
            ImageInput::S3(r) => {
                assert_eq!((r.bucket.as_str(), r.key.as_str()), ("bucket", "orgs/o1/uploads/abc"))
            }
            other => panic!("{other:?}"),
        }
        // Path tricks parse; the object store refuses them at read time (also 403).
        assert!(matches!(
            parse_text_image("documentImage", "s3://bucket/orgs/o1/../o2/x", MB15),
            Ok(ImageInput::S3(_))
        ));
        assert!(matches!(parse_text_image("documentImage", "s3://", MB15), Err(ApiError::S3Forbidden)));
        // Looks like a key but has no scheme: treated as base64, which it is not.
        assert!(matches!(
            parse_text_image("documentImage", "orgs/o1/uploads/abc!", MB15),
            Err(ApiError::InvalidBody { code: "invalid_base64", .. })
        ));
    }

    #[test]
    fn oversized_base64_is_refused_before_decoding() {
        let text = "A".repeat(2_000);
        assert!(matches!(parse_text_image("image", &text, 1_000), Err(ApiError::ImageTooLarge { .. })));
    }

    #[test]
    fn the_fingerprint_is_the_meaning_not_the_bytes() {
        const IMAGES: &[&str] = &["image"];
        let print = |fields: &Fields| fields.fingerprint("/v1/face/detect", IMAGES, MB15).unwrap();
        let json = parse_json(br#"{"image":"aGVsbG8=","mode":"x"}"#).unwrap();
        let reordered = parse_json(b"{ \"mode\" : \"x\",\n  \"image\": \"aGVs\\nbG8\" }").unwrap();
        let mut multipart = Fields::default();
        multipart.push("mode".into(), FieldValue::Text("x".into())).unwrap();
        multipart.push("image".into(), FieldValue::File(Bytes::from_static(b"hello"))).unwrap();
        assert_eq!(print(&json), print(&reordered));
        assert_eq!(print(&json), print(&multipart));
        // Other bytes, another field value, or another route: another request.
        assert_ne!(print(&json), print(&parse_json(br#"{"image":"aGVsbG8h","mode":"x"}"#).unwrap()));
        assert_ne!(print(&json), print(&parse_json(br#"{"image":"aGVsbG8=","mode":"y"}"#).unwrap()));
        assert_ne!(print(&json), json.fingerprint("/v1/document/scan", IMAGES, MB15).unwrap());
        // A text field that is not an image counts by its text, not by a base64 reading of it.
        let text = parse_json(br#"{"mode":"aGVsbG8="}"#).unwrap();
        let file = {
            let mut f = Fields::default();
            f.push("mode".into(), FieldValue::File(Bytes::from_static(b"hello"))).unwrap();
            f
        };
        assert_ne!(print(&text), print(&file));
        // Stored fingerprints must keep matching across releases (value computed independently).
        assert_eq!(print(&json), "559964499e4f9cf311932ca8c06a2e38591138e9bb58cbd5839e9d4017868f5f");
    }

    #[test]
    fn json_bodies() {
        let mut f = parse_json(br#"{"image":"aGk=","documentType":null}"#).unwrap();
        assert_eq!(f.take("image"), Some(FieldValue::Text("aGk=".into())));
        assert!(matches!(parse_json(b"[1,2]"), Err(ApiError::InvalidBody { code: "invalid_json", .. })));
        // A non-string value is refused where the field is read; an unknown one is unknown first.
        let mut f = parse_json(br#"{"image":5,"extra":{"a":1}}"#).unwrap();
        assert!(matches!(f.only(&["image"]), Err(ApiError::InvalidBody { code: "unknown_field", .. })));
        assert!(matches!(f.image("image", MB15), Err(ApiError::InvalidBody { code: "invalid_field", .. })));
        assert!(matches!(
            parse_json(b"{\"image\":"),
            Err(ApiError::InvalidBody { code: "invalid_json", .. })
        ));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse_json(deep.as_bytes()),
            Err(ApiError::InvalidBody { code: "invalid_json", .. })
        ));
        let dup = br#"{"image":"a","image":"b"}"#;
        assert!(matches!(parse_json(dup), Err(ApiError::InvalidBody { code: "duplicate_field", .. })));
    }

    #[test]
    fn unknown_and_missing_fields() {
        let mut f = parse_json(br#"{"imagee":"aGk="}"#).unwrap();
        assert!(matches!(f.only(&["image"]), Err(ApiError::InvalidBody { code: "unknown_field", .. })));
        assert!(matches!(f.image("image", MB15), Err(ApiError::InvalidBody { code: "missing_field", .. })));
    }
}
