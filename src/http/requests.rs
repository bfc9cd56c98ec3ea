//! Request bodies as the OpenAPI document shows them, one schema per media type, so that a
//! generated client sends images as binary multipart parts or as JSON strings. The handlers do not
//! deserialize into these types: they read [`super::input::Fields`], which accepts every form
//! (a multipart text part may also hold base64 or an `s3://` reference).
#![allow(dead_code)]

use utoipa::ToSchema;

use super::vocabulary::RequestedDocumentType;

/// JSON body of `POST /v1/identity/verify`.
///
/// Each image is a string in one of these forms: standard base64 (padding optional, line breaks
/// ignored); base64url; either behind a data-URL prefix such as `data:image/jpeg;base64,`; or an
/// S3 reference `s3://BUCKET/KEY` returned by `POST /v1/uploads`. The image is JPEG, PNG or WebP,
/// at most the server's image limit once decoded (15 MB by default; `GET /v1/info` when present).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// The identity document: base64, base64url, a `data:image/...;base64,` URL or `s3://BUCKET/KEY`.
    #[schema(min_length = 1)]
    pub document_image: String,
    /// The selfie: base64, base64url, a `data:image/...;base64,` URL or `s3://BUCKET/KEY`.
    #[schema(min_length = 1)]
    pub face_image: String,
    /// Absent or null: `auto`.
    #[schema(value_type = Option<RequestedDocumentType>)]
    pub document_type: Option<String>,
}

/// Multipart body of `POST /v1/identity/verify`: the images as file parts.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyMultipartRequest {
    /// The identity document: JPEG, PNG or WebP bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "image/*")]
    pub document_image: Vec<u8>,
    /// The selfie: JPEG, PNG or WebP bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "image/*")]
    pub face_image: Vec<u8>,
    /// Absent: `auto`.
    #[schema(value_type = RequestedDocumentType, required = false)]
    pub document_type: Option<String>,
}

/// JSON body of `POST /v1/document/scan` (image forms as in `VerifyRequest`).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanRequest {
    /// The document: base64, base64url, a `data:image/...;base64,` URL or `s3://BUCKET/KEY`.
    #[schema(min_length = 1)]
    pub document_image: String,
    /// Absent or null: `auto`.
    #[schema(value_type = Option<RequestedDocumentType>)]
    pub document_type: Option<String>,
}

/// Multipart body of `POST /v1/document/scan`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanMultipartRequest {
    /// The document: JPEG, PNG or WebP bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "image/*")]
    pub document_image: Vec<u8>,
    /// Absent: `auto`.
    #[schema(value_type = RequestedDocumentType, required = false)]
    pub document_type: Option<String>,
}

/// JSON body of `POST /v1/face/detect` (image forms as in `VerifyRequest`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectRequest {
    /// The photo: base64, base64url, a `data:image/...;base64,` URL or `s3://BUCKET/KEY`.
    #[schema(min_length = 1)]
    pub image: String,
}

/// Multipart body of `POST /v1/face/detect`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectMultipartRequest {
    /// The photo: JPEG, PNG or WebP bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "image/*")]
    pub image: Vec<u8>,
}

/// JSON body of `POST /v1/face/compare` (image forms as in `VerifyRequest`).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareRequest {
    /// base64, base64url, a `data:image/...;base64,` URL or `s3://BUCKET/KEY`.
    #[schema(min_length = 1)]
    pub source_image: String,
    /// base64, base64url, a `data:image/...;base64,` URL or `s3://BUCKET/KEY`.
    #[schema(min_length = 1)]
    pub target_image: String,
}

/// Multipart body of `POST /v1/face/compare`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareMultipartRequest {
    /// JPEG, PNG or WebP bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "image/*")]
    pub source_image: Vec<u8>,
    /// JPEG, PNG or WebP bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "image/*")]
    pub target_image: Vec<u8>,
}
