//! Confidence per document field, on 0 to 100, as Textract and Azure report it.
//!
//! * MRZ: the lowest recognizer probability among the field's characters (and its check digit):
//!   one weak character is enough to doubt a field. A field whose check digit fails, or a name
//!   flagged `name_uncertain`, is capped at 50, as the document confidence is.
//! * AAMVA barcode: 100 for every field read, because the symbol's own error correction has
//!   already either recovered the text exactly or failed.

use crate::mrz::{MrzFormat, MrzRecord};

/// A field of [`crate::DocumentFields`] (serialized as its camelCase name there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DocumentField {
    FullName,
    FirstName,
    MiddleName,
    LastName,
    DateOfBirth,
    Gender,
    Nationality,
    DocumentNumber,
    IssueDate,
    ExpirationDate,
    IssuingCountry,
    IssuingJurisdiction,
    Address,
}

/// Field confidences, in [`DocumentField`] order.
pub type FieldConfidence = Vec<(DocumentField, f32)>;

/// Where a field sits in the MRZ lines: (line, start, end), and the check digit that covers it.
struct Span {
    field: DocumentField,
    line: usize,
    range: (usize, usize),
    check_digit: Option<&'static str>,
}

const fn span(
    field: DocumentField,
    line: usize,
    start: usize,
    end: usize,
    check: Option<&'static str>,
) -> Span {
    Span { field, line, range: (start, end), check_digit: check }
}

const NUMBER_CD: Option<&str> = Some("document_number_check_digit");
const BIRTH_CD: Option<&str> = Some("birth_date_check_digit");
const EXPIRY_CD: Option<&str> = Some("expiry_check_digit");

/// ICAO 9303 positions. The second line of TD2, TD3 and the visas is laid out the same way; a
/// check digit's own position is included in its field's span.
fn spans(format: MrzFormat) -> Vec<Span> {
    use DocumentField::*;
    match format {
        MrzFormat::Td1 => vec![
            span(IssuingCountry, 0, 2, 5, None),
            span(DocumentNumber, 0, 5, 15, NUMBER_CD),
            span(DateOfBirth, 1, 0, 7, BIRTH_CD),
            span(Gender, 1, 7, 8, None),
            span(ExpirationDate, 1, 8, 15, EXPIRY_CD),
            span(Nationality, 1, 15, 18, None),
        ],
        MrzFormat::FraId => vec![
            span(IssuingCountry, 0, 2, 5, None),
            span(DocumentNumber, 1, 0, 13, NUMBER_CD),
            span(DateOfBirth, 1, 27, 34, BIRTH_CD),
            span(Gender, 1, 34, 35, None),
        ],
        MrzFormat::Td2 | MrzFormat::Td3 | MrzFormat::MrvA | MrzFormat::MrvB => vec![
            span(IssuingCountry, 0, 2, 5, None),
            span(DocumentNumber, 1, 0, 10, NUMBER_CD),
            span(Nationality, 1, 10, 13, None),
            span(DateOfBirth, 1, 13, 20, BIRTH_CD),
            span(Gender, 1, 20, 21, None),
            span(ExpirationDate, 1, 21, 28, EXPIRY_CD),
        ],
    }
}

/// Per-field confidence of an MRZ read from the recognizer's per-character probabilities
/// (`fitted`, one entry per line of `record.lines`). Only fields that were read are listed.
pub fn mrz(record: &MrzRecord, fitted: &[(String, Vec<f32>)], name_uncertain: bool) -> FieldConfidence {
    let failed = |name: &str| record.check_digits.iter().any(|c| c.name == name && !c.passed);
    let lowest = |line: usize, (start, end): (usize, usize)| -> Option<f32> {
        let probs = &fitted.get(line)?.1;
        probs.get(start..end.min(probs.len()))?.iter().copied().reduce(f32::min)
    };
    let mut out = Vec::new();
    for s in spans(record.format) {
        let Some(p) = lowest(s.line, s.range) else { continue };
        let capped = s.check_digit.is_some_and(failed);
        out.push((s.field, score(p, capped)));
    }
    // The name up to its last letter (trailing fillers say nothing about it).
    let (line, start, end) = record.name_span;
    let last_letter = record.lines.get(line).and_then(|l| {
        let chars: Vec<char> = l.chars().collect();
        (start..end.min(chars.len())).rev().find(|&i| chars[i] != '<')
    });
    if let Some(last) = last_letter
        && let Some(p) = lowest(line, (start, last + 1))
    {
        let name = score(p, name_uncertain);
        if !record.surname.trim().is_empty() {
            out.push((DocumentField::LastName, name));
        }
        if !record.given_names.trim().is_empty() {
            out.push((DocumentField::FirstName, name));
        }
        out.push((DocumentField::FullName, name));
    }
    out.retain(|(field, _)| present_in_mrz(record, *field));
    out.sort_by_key(|(field, _)| *field);
    out
}

fn present_in_mrz(record: &MrzRecord, field: DocumentField) -> bool {
    let filled = |s: &str| !s.trim().is_empty();
    match field {
        DocumentField::DocumentNumber => filled(&record.document_number),
        DocumentField::Nationality => filled(&record.nationality),
        DocumentField::IssuingCountry => filled(&record.issuing_country),
        DocumentField::IssuingJurisdiction => false,
        DocumentField::DateOfBirth => record.birth_date.is_some(),
        DocumentField::ExpirationDate => record.expiry_date.is_some(),
        DocumentField::Gender => record.sex.is_some(),
        _ => true,
    }
}

fn score(probability: f32, capped: bool) -> f32 {
    let p = 100.0 * probability.clamp(0.0, 1.0);
    if capped { p.min(50.0) } else { p }
}

/// Every field the barcode carried, at 100.
pub fn barcode(fields: &crate::DocumentFields) -> FieldConfidence {
    use DocumentField::*;
    let read = [
        (FullName, fields.full_name.is_some()),
        (FirstName, fields.first_name.is_some()),
        (MiddleName, fields.middle_name.is_some()),
        (LastName, fields.last_name.is_some()),
        (DateOfBirth, fields.date_of_birth.is_some()),
        (Gender, fields.gender.is_some()),
        (Nationality, fields.nationality.is_some()),
        (DocumentNumber, fields.document_number.is_some()),
        (IssueDate, fields.issue_date.is_some()),
        (ExpirationDate, fields.expiration_date.is_some()),
        (IssuingCountry, fields.issuing_country.is_some()),
        (IssuingJurisdiction, fields.issuing_jurisdiction.is_some()),
        (Address, fields.address.is_some()),
    ];
    read.into_iter().filter(|(_, present)| *present).map(|(field, _)| (field, 100.0)).collect()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    const TD3: [&str; 2] =
        ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"];

    fn record(lines: &[&str]) -> MrzRecord {
        crate::mrz::parse(lines, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap()
    }

    fn fitted(lines: &[&str], p: f32) -> Vec<(String, Vec<f32>)> {
        lines.iter().map(|l| (l.to_string(), vec![p; l.len()])).collect()
    }

    #[test]
    fn the_weakest_character_of_a_field_sets_its_confidence() {
        let r = record(&TD3);
        let mut probs = fitted(&TD3, 0.99);
        probs[1].1[3] = 0.6; // a character of the document number
        let conf = mrz(&r, &probs, false);
        let get = |f| conf.iter().find(|(field, _)| *field == f).map(|(_, c)| *c);
        assert!((get(DocumentField::DocumentNumber).unwrap() - 60.0).abs() < 1e-3);
        assert!((get(DocumentField::DateOfBirth).unwrap() - 99.0).abs() < 1e-3);
        assert!((get(DocumentField::LastName).unwrap() - 99.0).abs() < 1e-3);
        assert_eq!(get(DocumentField::Address), None, "an MRZ has no address");
    }

    #[test]
    fn an_uncertain_name_and_a_failed_check_digit_are_capped_at_50() {
        let mut lines = TD3;
        lines[1] = "L898902C36UTO7408125F1204159ZE184226B<<<<<10"; // birth date check digit wrong
        let r = record(&lines);
        let conf = mrz(&r, &fitted(&lines, 0.99), true);
        let get = |f| conf.iter().find(|(field, _)| *field == f).map(|(_, c)| *c).unwrap();
        assert_eq!(get(DocumentField::DateOfBirth), 50.0);
        assert_eq!(get(DocumentField::FullName), 50.0);
        assert!(get(DocumentField::ExpirationDate) > 98.0);
    }
}
