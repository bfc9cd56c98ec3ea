//! The closed vocabularies of the contract: every code and name a response can carry, as the
//! OpenAPI enums show them. The engines and the service produce these strings where they decide;
//! `tests/api/openapi.rs` reads the sources and fails when one of them is missing here.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// A string schema with a closed set of values, as a named component.
fn string_enum(description: &str, values: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// Declares a schema-only type (used through `#[schema(value_type = ...)]`) for a vocabulary.
macro_rules! vocabulary {
    ($(#[doc = $doc:literal])* $name:ident = $values:ident) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_enum(concat!($($doc),*).trim(), $values)
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

pub const REQUESTED_DOCUMENT_TYPES: &[&str] = &["auto", "passport", "drivers_license", "national_id"];
pub const UPLOAD_CONTENT_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];
pub const DOCUMENT_TYPES: &[&str] = &["passport", "drivers_license", "national_id", "visa"];
pub const DOCUMENT_SOURCES: &[&str] = &[
    "mrz_td1",
    "mrz_td2",
    "mrz_td3",
    "mrz_mrva",
    "mrz_mrvb",
    "mrz_fra_id",
    "pdf417_aamva",
    "viz_aamva",
    "viz_eu_dl",
    "viz_id_card",
];
pub const CHECK_NAMES: &[&str] = &[
    "document_number_check_digit",
    "birth_date_check_digit",
    "expiry_check_digit",
    "optional_data_check_digit",
    "composite_check_digit",
    "not_expired",
    "name_certain",
    "document_type_matches",
    "birth_date_plausible",
    "document_number_format",
    "eu_dl_mrz_check_digit",
    "viz_mrz_consistent",
    "minimum_age",
];
pub const DOCUMENT_REASONS: &[&str] = &[
    "check_digit_failed",
    "expired",
    "expiry_unreadable",
    "low_recognition_confidence",
    "name_uncertain",
    "birth_date_implausible",
    "document_number_format",
    "viz_mrz_mismatch",
    "below_minimum_age",
];
pub const QUALITY_REASONS: &[&str] =
    &["face_too_small", "blurry", "too_dark", "too_bright", "pose_yaw", "pose_roll"];
pub const VERDICT_REASONS: &[&str] = &[
    "document_not_read",
    "document_checks_failed",
    "no_face_detected",
    "faces_not_compared",
    "faces_do_not_match",
];
pub const BLOCK_ERROR_CODES: &[&str] = &[
    "no_document_found",
    "mrz_unreadable",
    "barcode_unreadable",
    "document_type_mismatch",
    "no_face_detected",
    "portrait_not_found",
];

vocabulary! {
    /// `auto` (the default) reads whatever is found; another value also checks that the document
    /// is of that type (`document_type_mismatch` otherwise).
    RequestedDocumentType = REQUESTED_DOCUMENT_TYPES
}
vocabulary! {
    /// The content type the upload will be PUT with.
    UploadContentType = UPLOAD_CONTENT_TYPES
}
vocabulary! {
    /// The type of the document read.
    DocumentTypeName = DOCUMENT_TYPES
}
vocabulary! {
    /// Where the fields were read: an MRZ of the given layout (`mrz_fra_id`: the French national ID
    /// card's own layout, before 2021), an AAMVA PDF417 barcode, or the
    /// printed fields of a card front (`viz_aamva`: US or Canadian licence or ID card, `viz_eu_dl`:
    /// EU licence, `viz_id_card`: an ID card's labelled fields).
    DocumentSource = DOCUMENT_SOURCES
}
vocabulary! {
    /// A check on the document: the MRZ check digits, `not_expired`, `name_certain` (the name,
    /// which has no check digit, was read unambiguously), `document_type_matches` (when a type was
    /// requested) and `minimum_age` (when the server sets `min_age`); for a card front also
    /// `birth_date_plausible`, `document_number_format` (a US state's published licence number
    /// shape), `eu_dl_mrz_check_digit` (the EU licence's one-line MRZ) and `viz_mrz_consistent`
    /// (the printed fields agree with the MRZ on the same page).
    CheckName = CHECK_NAMES
}
vocabulary! {
    /// Why the document's confidence was lowered or a check failed.
    DocumentReason = DOCUMENT_REASONS
}
vocabulary! {
    /// A quality concern about the largest face.
    QualityReason = QUALITY_REASONS
}
vocabulary! {
    /// Why `verified` is false.
    VerdictReason = VERDICT_REASONS
}
vocabulary! {
    /// Why a block of a 200 answer failed (the other blocks still report).
    BlockErrorCode = BLOCK_ERROR_CODES
}

/// The error codes of each error status (the README's Errors table).
pub const ERROR_CODES: &[(u16, &str, &[&str])] = &[
    (
        400,
        "BadRequest",
        &[
            "invalid_json",
            "invalid_body",
            "invalid_multipart",
            "unsupported_content_type",
            "missing_field",
            "duplicate_field",
            "unknown_field",
            "invalid_field",
            "invalid_base64",
            "unsupported_image_format",
            "image_too_large",
            "image_corrupt",
            "image_dimensions_invalid",
            "invalid_document_type",
            "invalid_idempotency_key",
            "body_too_large",
            "s3_not_configured",
        ],
    ),
    (401, "Unauthorized", &["unauthorized"]),
    (402, "PaymentRequired", &["insufficient_tokens"]),
    (403, "Forbidden", &["s3_key_forbidden"]),
    (404, "NotFound", &["not_found"]),
    (405, "MethodNotAllowed", &["method_not_allowed"]),
    (409, "Conflict", &["idempotency_in_progress"]),
    (422, "UnprocessableContent", &["idempotency_key_reused"]),
    (429, "TooManyRequests", &["rate_limited"]),
    (500, "Internal", &["internal_error"]),
    (503, "ServiceUnavailable", &["overloaded", "dependency_unavailable", "timeout"]),
];

/// The documented error codes of `status`.
pub fn error_codes(status: u16) -> &'static [&'static str] {
    ERROR_CODES.iter().find(|(s, _, _)| *s == status).map_or(&[], |(_, _, codes)| codes)
}
