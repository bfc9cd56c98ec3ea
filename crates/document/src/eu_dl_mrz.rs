//! The one-line machine-readable zone of EU driving licences (ISO/IEC 18013-1), 30 OCR-B
//! characters, e.g. `D1FRA13AA000026181231MARTIN<<9`:
//!
//! | positions | content |
//! |---|---|
//! | 1 | `D` (driving licence) |
//! | 2 | a configuration digit |
//! | 3–5 | the issuing state: ISO 3166 alpha-3, or its distinguishing sign padded with `<` |
//! | 6–29 | national data |
//! | 30 | check digit over positions 1–29 (ICAO 9303 weights 7, 3, 1) |
//!
//! France fills the national data as: licence number (9), a check digit over positions 1–14, a
//! date `YYMMDD`, the first 8 characters of the surname. Other states' national data is kept as
//! it is; the visual zone's licence number is then looked for inside it.
//!
//! Nothing is ever repaired from a check digit: a line that fails it is reported as failing.

use chrono::NaiveDate;

use crate::mrz;

/// A parsed EU licence MRZ line.
#[derive(Clone, PartialEq)]
pub struct EuDlMrz {
    pub line: String,
    /// The issuing state as printed (alpha-3 or a distinguishing sign), without fillers.
    pub issuing_state: String,
    /// Positions 6–29, fillers kept.
    pub national_data: String,
    /// The check digit at position 30 matches positions 1–29.
    pub check_digit_passed: bool,
    /// France's layout of the national data, when the state is `FRA`.
    pub french: Option<FrenchData>,
}

#[derive(Clone, PartialEq)]
pub struct FrenchData {
    pub licence_number: String,
    /// The check digit at position 15 matches positions 1–14.
    pub number_check_digit_passed: bool,
    /// The `YYMMDD` date at positions 16–21 (ANTS does not publish which date; it is compared
    /// with both the issue and the expiry date of the visual zone).
    pub date: Option<NaiveDate>,
    /// The first 8 characters of the surname, without fillers.
    pub surname_prefix: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EuDlMrzError {
    #[error("an EU licence MRZ line has 30 characters")]
    Length,
    #[error("an EU licence MRZ line holds only A-Z 0-9 <")]
    Charset,
    #[error("an EU licence MRZ line starts with D and a digit")]
    Prefix,
}

/// Parses one line as read by OCR: spaces removed, `«` read as `<`, upper case.
pub fn parse(raw: &str, today: NaiveDate) -> Result<EuDlMrz, EuDlMrzError> {
    let line: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if c == '«' { '<' } else { c.to_ascii_uppercase() })
        .collect();
    if line.chars().count() != 30 {
        return Err(EuDlMrzError::Length);
    }
    if !line.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<') {
        return Err(EuDlMrzError::Charset);
    }
    let bytes = line.as_bytes();
    if bytes[0] != b'D'
        || !bytes[1].is_ascii_digit()
        || !line[2..5].chars().all(|c| c.is_ascii_uppercase() || c == '<')
    {
        return Err(EuDlMrzError::Prefix);
    }
    let issuing_state = line[2..5].trim_matches('<').to_string();
    let check_digit_passed = mrz::verify(&line[..29], bytes[29] as char);
    let french = (issuing_state == "FRA").then(|| FrenchData {
        licence_number: line[5..14].trim_end_matches('<').to_string(),
        number_check_digit_passed: mrz::verify(&line[..14], bytes[14] as char),
        date: mrz::expiry_date(&line[15..21], today),
        surname_prefix: line[21..29].trim_end_matches('<').to_string(),
    });
    Ok(EuDlMrz { national_data: line[5..29].to_string(), issuing_state, check_digit_passed, french, line })
}

impl std::fmt::Debug for EuDlMrz {
    // Personal data stays out of logs: the state and the check results only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EuDlMrz")
            .field("issuing_state", &self.issuing_state)
            .field("check_digit_passed", &self.check_digit_passed)
            .field("number_check_digit_passed", &self.french.as_ref().map(|f| f.number_check_digit_passed))
            .finish_non_exhaustive()
    }
}

impl EuDlMrz {
    /// Every check digit the line carries passes.
    pub fn check_digits_pass(&self) -> bool {
        self.check_digit_passed && self.french.as_ref().is_none_or(|f| f.number_check_digit_passed)
    }

    /// The licence number as the MRZ gives it: France's field, else `None` (the national data of
    /// other states has no published layout; see [`EuDlMrz::contains_number`]).
    pub fn licence_number(&self) -> Option<&str> {
        self.french.as_ref().map(|f| f.licence_number.as_str())
    }

    /// Whether `number` (from the visual zone, spaces removed) is where this line says it is.
    pub fn contains_number(&self, number: &str) -> bool {
        let number = compact(number);
        match self.licence_number() {
            Some(own) => own == number,
            None => !number.is_empty() && self.national_data.replace('<', "").contains(&number),
        }
    }
}

/// Upper case, only A-Z and 0-9 (what an MRZ can hold of a visual-zone value).
pub fn compact(s: &str) -> String {
    crate::viz::fold(s).chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    #[test]
    fn the_french_specimen_line_parses_with_both_check_digits() {
        let m = parse("D1FRA13AA000026181231MARTIN<<9", today()).unwrap();
        assert_eq!(m.issuing_state, "FRA");
        assert!(m.check_digit_passed);
        let f = m.french.as_ref().unwrap();
        assert_eq!(f.licence_number, "13AA00002");
        assert!(f.number_check_digit_passed);
        assert_eq!(f.date, NaiveDate::from_ymd_opt(2018, 12, 31));
        assert_eq!(f.surname_prefix, "MARTIN");
        assert!(m.check_digits_pass());
        assert!(m.contains_number("13 AA 00002"));
        assert!(!m.contains_number("13AA00003"));
    }

    #[test]
    fn ocr_spacing_and_guillemets_are_tolerated_but_a_changed_character_fails_its_check() {
        let m = parse("D1FRA 13AA00002 6181231 MARTIN««9", today()).unwrap();
        assert!(m.check_digits_pass());
        // One digit of the number misread: both check digits catch it, and nothing is repaired.
        let bad = parse("D1FRA13AA000036181231MARTIN<<9", today()).unwrap();
        assert!(!bad.check_digit_passed);
        assert!(!bad.french.as_ref().unwrap().number_check_digit_passed);
        assert_eq!(bad.licence_number(), Some("13AA00003"));
    }

    #[test]
    fn other_states_keep_their_national_data_and_are_matched_by_containment() {
        // A made-up Dutch-style line: the number sits somewhere in the national data.
        let body = "D1NLD15299963418<<<<<<<<<<<<<";
        let line = format!("{body}{}", mrz::check_digit(body).unwrap());
        let m = parse(&line, today()).unwrap();
        assert_eq!(m.issuing_state, "NLD");
        assert!(m.french.is_none());
        assert!(m.check_digits_pass());
        assert!(m.contains_number("5299963418"));
        assert!(!m.contains_number("5299963419"));
        assert!(!m.contains_number(""));
    }

    #[test]
    fn what_is_not_an_eu_licence_line_is_refused() {
        assert_eq!(parse("D1FRA13AA000026181231MARTIN<9", today()), Err(EuDlMrzError::Length));
        assert_eq!(parse("P1FRA13AA000026181231MARTIN<<9", today()), Err(EuDlMrzError::Prefix));
        assert_eq!(parse("DXFRA13AA000026181231MARTIN<<9", today()), Err(EuDlMrzError::Prefix));
        assert_eq!(parse("D1FRA13AA00002618123/MARTIN<<9", today()), Err(EuDlMrzError::Charset));
    }
}
