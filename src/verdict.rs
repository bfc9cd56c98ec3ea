//! The verdict: a pure function from the three blocks' outcomes to `verified` and
//! `overallConfidence`. No I/O, no engine types: easy to read, exhaustively tested.
//!
//! Rule: `verified` is true only when the document was read without error and all its checks
//! pass (check digits valid, not expired), a face was detected in the selfie, and the document
//! portrait matches the selfie at the configured operating point.
//! `overallConfidence` = 0.4 × document + 0.2 × face detection + 0.4 × face match, where a block
//! that failed contributes 0.
//!
//! The service (`verify::judge`) builds the summaries from the engines' unrounded values.

/// What the verdict needs to know about the document block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DocumentSummary {
    /// The block carries no error (something was read, of the requested type).
    pub read: bool,
    /// Every check passed: check digits, not expired, optional age.
    pub checks_passed: bool,
    /// 0 to 100.
    pub confidence: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionSummary {
    pub face_detected: bool,
    pub confidence: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchSummary {
    /// The comparison ran (both faces found and embedded).
    pub compared: bool,
    pub is_match: bool,
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub verified: bool,
    /// 0 to 100, rounded to two decimals.
    pub overall_confidence: f32,
    /// Why `verified` is false (empty when it is true).
    pub reasons: Vec<&'static str>,
}

pub const DOCUMENT_WEIGHT: f32 = 0.4;
pub const DETECTION_WEIGHT: f32 = 0.2;
pub const MATCH_WEIGHT: f32 = 0.4;

pub fn decide(document: DocumentSummary, detection: DetectionSummary, matching: MatchSummary) -> Verdict {
    let mut reasons = Vec::new();
    if !document.read {
        reasons.push("document_not_read");
    } else if !document.checks_passed {
        reasons.push("document_checks_failed");
    }
    if !detection.face_detected {
        reasons.push("no_face_detected");
    }
    if !matching.compared {
        reasons.push("faces_not_compared");
    } else if !matching.is_match {
        reasons.push("faces_do_not_match");
    }
    let part = |ok: bool, confidence: f32| if ok { clamp_percent(confidence) } else { 0.0 };
    let overall = DOCUMENT_WEIGHT * part(document.read, document.confidence)
        + DETECTION_WEIGHT * part(detection.face_detected, detection.confidence)
        + MATCH_WEIGHT * part(matching.compared, matching.confidence);
    Verdict { verified: reasons.is_empty(), overall_confidence: round2(overall), reasons }
}

fn clamp_percent(x: f32) -> f32 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 100.0) }
}

pub fn round2(x: f32) -> f32 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_OK: DocumentSummary = DocumentSummary { read: true, checks_passed: true, confidence: 90.0 };
    const DOC_BAD_CHECKS: DocumentSummary =
        DocumentSummary { read: true, checks_passed: false, confidence: 40.0 };
    const DOC_FAILED: DocumentSummary =
        DocumentSummary { read: false, checks_passed: false, confidence: 55.0 };
    const FACE: DetectionSummary = DetectionSummary { face_detected: true, confidence: 95.0 };
    const NO_FACE: DetectionSummary = DetectionSummary { face_detected: false, confidence: 0.0 };
    const MATCH: MatchSummary = MatchSummary { compared: true, is_match: true, confidence: 99.0 };
    const MISMATCH: MatchSummary = MatchSummary { compared: true, is_match: false, confidence: 2.0 };
    const NOT_COMPARED: MatchSummary = MatchSummary { compared: false, is_match: false, confidence: 80.0 };

    #[test]
    fn table() {
        #[allow(clippy::type_complexity)]
        let cases: &[(DocumentSummary, DetectionSummary, MatchSummary, bool, f32, &[&str])] = &[
            (DOC_OK, FACE, MATCH, true, 0.4 * 90.0 + 0.2 * 95.0 + 0.4 * 99.0, &[]),
            (
                DOC_BAD_CHECKS,
                FACE,
                MATCH,
                false,
                0.4 * 40.0 + 0.2 * 95.0 + 0.4 * 99.0,
                &["document_checks_failed"],
            ),
            // A failed block contributes 0 whatever confidence it carries.
            (DOC_FAILED, FACE, MATCH, false, 0.2 * 95.0 + 0.4 * 99.0, &["document_not_read"]),
            (DOC_OK, NO_FACE, NOT_COMPARED, false, 0.4 * 90.0, &["no_face_detected", "faces_not_compared"]),
            (DOC_OK, FACE, MISMATCH, false, 0.4 * 90.0 + 0.2 * 95.0 + 0.4 * 2.0, &["faces_do_not_match"]),
            (DOC_OK, FACE, NOT_COMPARED, false, 0.4 * 90.0 + 0.2 * 95.0, &["faces_not_compared"]),
            (
                DOC_FAILED,
                NO_FACE,
                NOT_COMPARED,
                false,
                0.0,
                &["document_not_read", "no_face_detected", "faces_not_compared"],
            ),
        ];
        for (i, (doc, det, m, verified, overall, reasons)) in cases.iter().enumerate() {
            let v = decide(*doc, *det, *m);
            assert_eq!(v.verified, *verified, "case {i}");
            assert!(
                (v.overall_confidence - round2(*overall)).abs() < 1e-3,
                "case {i}: {}",
                v.overall_confidence
            );
            assert_eq!(v.reasons, *reasons, "case {i}");
        }
    }

    #[test]
    fn confidences_are_clamped_to_the_0_100_scale() {
        let v = decide(
            DocumentSummary { read: true, checks_passed: true, confidence: 250.0 },
            DetectionSummary { face_detected: true, confidence: f32::NAN },
            MatchSummary { compared: true, is_match: true, confidence: -5.0 },
        );
        assert_eq!(v.overall_confidence, 40.0);
        assert!(v.verified);
    }

    #[test]
    fn weights_sum_to_one() {
        assert!((DOCUMENT_WEIGHT + DETECTION_WEIGHT + MATCH_WEIGHT - 1.0).abs() < 1e-6);
    }
}
