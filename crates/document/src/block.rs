//! In-band block failures: one block of a response (document, face detection, face match) could
//! not be produced. The request still succeeds; the block carries this error instead of a result.
//!
//! One type from the engine to the wire: the document engine returns it inside its scan, the
//! service and the HTTP layer add the face ones, and the response copies code and message as they are.

/// The stable machine code of a block failure; [`BlockCode::as_str`] is what the API returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockCode {
    /// Neither an MRZ nor a PDF417 barcode was found.
    NoDocumentFound,
    /// An MRZ-like text zone was found but could not be read.
    MrzUnreadable,
    /// A PDF417 barcode was found but holds no AAMVA licence data.
    BarcodeUnreadable,
    /// The document read is not of the requested type.
    DocumentTypeMismatch,
    /// No face in an image that should hold one.
    NoFaceDetected,
    /// No portrait on the identity document.
    PortraitNotFound,
}

impl BlockCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockCode::NoDocumentFound => "no_document_found",
            BlockCode::MrzUnreadable => "mrz_unreadable",
            BlockCode::BarcodeUnreadable => "barcode_unreadable",
            BlockCode::DocumentTypeMismatch => "document_type_mismatch",
            BlockCode::NoFaceDetected => "no_face_detected",
            BlockCode::PortraitNotFound => "portrait_not_found",
        }
    }
}

/// A block failure: the stable code and a human-readable message (whose wording may change).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockError {
    pub code: BlockCode,
    pub message: String,
}

impl BlockError {
    pub fn new(code: BlockCode, message: impl Into<String>) -> BlockError {
        BlockError { code, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            BlockCode::NoDocumentFound,
            BlockCode::MrzUnreadable,
            BlockCode::BarcodeUnreadable,
            BlockCode::DocumentTypeMismatch,
            BlockCode::NoFaceDetected,
            BlockCode::PortraitNotFound,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
