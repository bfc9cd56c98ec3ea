use super::*;
use crate::RequestedType;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// A line at (left, top) of the card, one line-height (0.04) tall.
fn line(text: &str, left: f32, top: f32) -> TextLine {
    TextLine {
        text: text.to_string(),
        confidence: 0.97,
        left,
        top,
        right: (left + 0.5).min(1.0),
        bottom: top + 0.04,
    }
}

fn check(scan_checks: &[Check], name: &str) -> Option<bool> {
    scan_checks.iter().find(|c| c.name == name).map(|c| c.passed)
}

/// An EU licence MRZ line for France with both check digits computed.
fn french_mrz(number: &str, yymmdd: &str, surname: &str) -> String {
    let head = format!("D1FRA{number}");
    let body = format!("{head}{}{yymmdd}{surname:<<8}", mrz::check_digit(&head).unwrap());
    let body = body.replace(' ', "<");
    format!("{body}{}", mrz::check_digit(&body).unwrap())
}

fn us_front() -> Vec<TextLine> {
    vec![
        line("PENNSYLVANIA", 0.05, 0.03),
        line("DRIVER'S LICENSE", 0.55, 0.03),
        line("USA", 0.85, 0.10),
        line("4d DLN: 99 999 999", 0.35, 0.18),
        line("3 DOB: 01/07/1973", 0.35, 0.24),
        line("4b EXP: 01/08/2030", 0.70, 0.24),
        line("1 SAMPLE", 0.35, 0.32),
        line("2 ANDREW JASON", 0.35, 0.37),
        line("8 123 MAIN STREET", 0.35, 0.44),
        line("HARRISBURG, PA 17101-0000", 0.37, 0.49),
        line("4a ISS: 01/07/2022", 0.35, 0.58),
        line("15 SEX: M 16 HGT: 5'-11\" 18 EYES: BRO", 0.35, 0.66),
        line("9 CLASS: C", 0.35, 0.74),
        line("12 RSTR: 1", 0.60, 0.74),
        line("5 DD: 1234567890123 456789012 12345", 0.35, 0.90),
    ]
}

#[test]
fn a_us_licence_front_gives_every_numbered_field() {
    let read = parse(&us_front(), RequestedType::Auto, today()).unwrap();
    assert_eq!(read.layout, VizLayout::Aamva);
    assert_eq!(read.layout.source_name(), "viz_aamva");
    assert_eq!(read.jurisdiction.as_deref(), Some("PA"));
    assert!(!read.identification_card);
    let f = &read.fields;
    assert_eq!(f.last_name.as_deref(), Some("SAMPLE"));
    assert_eq!(f.first_name.as_deref(), Some("ANDREW"));
    assert_eq!(f.middle_name.as_deref(), Some("JASON"));
    assert_eq!(f.full_name.as_deref(), Some("ANDREW JASON SAMPLE"));
    assert_eq!(f.date_of_birth, date(1973, 1, 7));
    assert_eq!(f.issue_date, date(2022, 1, 7));
    assert_eq!(f.expiration_date, date(2030, 1, 8));
    // 4d is the licence number in the AAMVA numbering; 5 (DD) is not reported as the number.
    assert_eq!(f.document_number.as_deref(), Some("99999999"));
    assert_eq!(f.address.as_deref(), Some("123 MAIN STREET, HARRISBURG, PA 17101-0000"));
    assert_eq!(f.gender.as_deref(), Some("M"));
    assert_eq!(f.issuing_country.as_deref(), Some("USA"));
    assert_eq!(f.issuing_jurisdiction.as_deref(), Some("PA"));
    assert_eq!(read.categories.as_deref(), Some("C"));
    for field in [DocumentField::LastName, DocumentField::DateOfBirth, DocumentField::DocumentNumber] {
        let p = read.field_confidence.iter().find(|(f, _)| *f == field).map(|(_, p)| *p);
        assert!(p.is_some_and(|p| (p - 97.0).abs() < 0.01), "{field:?}: {p:?}");
    }
    let (checks, reasons) = checks(&read, today());
    assert_eq!(check(&checks, "not_expired"), Some(true));
    assert_eq!(check(&checks, "birth_date_plausible"), Some(true));
    assert_eq!(check(&checks, "document_number_format"), Some(true));
    assert!(reasons.is_empty(), "{reasons:?}");
}

#[test]
fn a_us_licence_number_of_the_wrong_shape_for_its_state_fails_its_check() {
    let mut lines = us_front();
    lines[0] = line("CALIFORNIA", 0.05, 0.03);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert_eq!(read.jurisdiction.as_deref(), Some("CA"));
    let (checks, reasons) = checks(&read, today());
    assert_eq!(check(&checks, "document_number_format"), Some(false));
    assert!(reasons.contains(&"document_number_format"));
    // A state whose shape we do not hold gets no such check rather than a guess.
    lines[0] = line("VERMONT", 0.05, 0.03);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert_eq!(check(&super::checks(&read, today()).0, "document_number_format"), None);
}

#[test]
fn the_state_is_the_longest_name_in_the_header_not_a_town_in_the_address() {
    let mut lines = us_front();
    lines[0] = line("WEST VIRGINIA", 0.05, 0.03);
    lines[9] = line("WASHINGTON, PA 15301", 0.37, 0.49);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert_eq!(read.jurisdiction.as_deref(), Some("WV"));
}

fn french_licence(mrz_line: &str) -> Vec<TextLine> {
    vec![
        line("PERMIS DE CONDUIRE", 0.30, 0.03),
        line("RÉPUBLIQUE FRANÇAISE", 0.30, 0.09),
        line("F", 0.05, 0.12),
        line("1. MARTIN", 0.35, 0.20),
        line("2. PAUL", 0.35, 0.26),
        line("3. 14.07.1981 PARIS", 0.35, 0.32),
        line("4a. 13.09.2023 4b. 12.09.2038", 0.35, 0.38),
        line("4c. PRÉFECTURE DE POLICE", 0.35, 0.44),
        line("5. 13AA00002", 0.35, 0.50),
        line("9. AM/A1/B1/B", 0.35, 0.70),
        line(mrz_line, 0.05, 0.90),
    ]
}

#[test]
fn an_eu_licence_front_is_read_by_its_numbers_and_agrees_with_its_mrz_line() {
    let mrz_line = french_mrz("13AA00002", "380912", "MARTIN");
    let read = parse(&french_licence(&mrz_line), RequestedType::Auto, today()).unwrap();
    assert_eq!(read.layout, VizLayout::EuDrivingLicence);
    assert_eq!(read.layout.source_name(), "viz_eu_dl");
    assert_eq!(read.jurisdiction.as_deref(), Some("FRA"));
    let f = &read.fields;
    assert_eq!(f.last_name.as_deref(), Some("MARTIN"));
    assert_eq!(f.first_name.as_deref(), Some("PAUL"));
    assert_eq!(f.middle_name, None);
    assert_eq!(f.date_of_birth, date(1981, 7, 14));
    assert_eq!(f.issue_date, date(2023, 9, 13));
    assert_eq!(f.expiration_date, date(2038, 9, 12));
    // 5 is the licence number in the EU numbering.
    assert_eq!(f.document_number.as_deref(), Some("13AA00002"));
    assert_eq!(f.issuing_country.as_deref(), Some("FRA"));
    assert_eq!(f.issuing_jurisdiction, None, "an EU licence's issuer is its country");
    assert_eq!(read.categories.as_deref(), Some("AM/A1/B1/B"));
    let (checks, reasons) = checks(&read, today());
    assert_eq!(check(&checks, "eu_dl_mrz_check_digit"), Some(true));
    assert_eq!(check(&checks, "viz_mrz_consistent"), Some(true));
    assert_eq!(check(&checks, "not_expired"), Some(true));
    assert!(reasons.is_empty(), "{reasons:?}");
}

#[test]
fn an_mrz_line_that_names_another_licence_is_a_mismatch_not_a_check_digit_failure() {
    // A well-formed line (both check digits right) for a different number: a forgery signal.
    let mrz_line = french_mrz("13AA00003", "380912", "MARTIN");
    let read = parse(&french_licence(&mrz_line), RequestedType::Auto, today()).unwrap();
    let (checks, reasons) = checks(&read, today());
    assert_eq!(check(&checks, "eu_dl_mrz_check_digit"), Some(true));
    assert_eq!(check(&checks, "viz_mrz_consistent"), Some(false));
    assert_eq!(reasons, vec!["viz_mrz_mismatch"]);
    // Another surname in the line is a mismatch too.
    let read =
        parse(&french_licence(&french_mrz("13AA00002", "380912", "DURAND")), RequestedType::Auto, today());
    assert_eq!(check(&super::checks(&read.unwrap(), today()).0, "viz_mrz_consistent"), Some(false));
}

#[test]
fn without_a_title_the_flag_sign_and_the_requested_type_decide() {
    let mut lines = french_licence("");
    lines.truncate(10);
    lines.remove(1);
    lines.remove(0);
    assert!(parse(&lines, RequestedType::Auto, today()).is_none(), "no title, no MRZ: not a known layout");
    let read = parse(&lines, RequestedType::DriversLicense, today()).unwrap();
    assert_eq!(read.layout, VizLayout::EuDrivingLicence);
    assert_eq!(read.jurisdiction.as_deref(), Some("FRA"), "from the flag's distinguishing sign");
    assert_eq!(read.fields.document_number.as_deref(), Some("13AA00002"));
}

fn french_id_card() -> Vec<TextLine> {
    vec![
        line("RÉPUBLIQUE FRANÇAISE", 0.30, 0.03),
        line("CARTE NATIONALE D'IDENTITÉ / IDENTITY CARD", 0.30, 0.08),
        line("NOM / Surname", 0.35, 0.20),
        line("MARTIN", 0.35, 0.25),
        line("Prénoms / Given names", 0.35, 0.32),
        line("Maëlys-Gaëlle, Marie", 0.35, 0.37),
        line("SEXE / Sex", 0.35, 0.45),
        line("NATIONALITÉ / Nationality", 0.50, 0.45),
        line("DATE DE NAISS. / Date of birth", 0.70, 0.45),
        line("F", 0.35, 0.50),
        line("FRA", 0.50, 0.50),
        line("12 07 1990", 0.70, 0.50),
        line("N° DU DOCUMENT / Document No", 0.35, 0.60),
        line("X4RTBPFW4", 0.35, 0.65),
        line("DATE D'EXPIR. / Expiry date", 0.35, 0.72),
        line("11 02 2030", 0.35, 0.77),
    ]
}

#[test]
fn an_id_card_with_bilingual_labels_above_its_values_is_read() {
    let read = parse(&french_id_card(), RequestedType::Auto, today()).unwrap();
    assert_eq!(read.layout, VizLayout::IdCard);
    assert_eq!(read.layout.source_name(), "viz_id_card");
    assert!(read.identification_card);
    assert_eq!(read.jurisdiction.as_deref(), Some("FRA"));
    let f = &read.fields;
    assert_eq!(f.last_name.as_deref(), Some("MARTIN"));
    assert_eq!(f.first_name.as_deref(), Some("Maëlys-Gaëlle Marie"));
    assert_eq!(f.gender.as_deref(), Some("F"));
    assert_eq!(f.nationality.as_deref(), Some("FRA"));
    // `12 07 1990` starts with a field number (12) but is a date.
    assert_eq!(f.date_of_birth, date(1990, 7, 12));
    assert_eq!(f.document_number.as_deref(), Some("X4RTBPFW4"));
    assert_eq!(f.expiration_date, date(2030, 2, 11));
}

#[test]
fn a_number_sign_glued_to_the_next_word_still_labels_the_number() {
    // A French ID card photographed from afar, as OCR read it (`/tmp/fronts_far` 011, session 10):
    // `N°DU` in one word, so only `Document No` was a label, and it looked for its value below
    // its own middle of the line.
    let at = |text: &str, left: f32, top: f32, right: f32, bottom: f32| TextLine {
        text: text.to_string(),
        confidence: 0.97,
        left,
        top,
        right,
        bottom,
    };
    let lines = vec![
        at("RÉPUBLIQUE FRANÇAISE", 0.275, 0.159, 0.423, 0.182),
        at("CARTE NATIONALE D'IDENTITÉ / IDENTITY CARD", 0.275, 0.182, 0.502, 0.203),
        at("NOM/ Surname", 0.282, 0.217, 0.342, 0.236),
        at("GARCIA", 0.283, 0.233, 0.333, 0.257),
        at("Prénoms / Given names", 0.281, 0.260, 0.371, 0.281),
        at("JAMES", 0.281, 0.277, 0.324, 0.302),
        at("SEXE / Sex", 0.282, 0.303, 0.326, 0.324),
        at("F", 0.282, 0.320, 0.295, 0.342),
        at("NATIONALITÉ / Nationality", 0.282, 0.348, 0.379, 0.367),
        at("DATE DE NAISS. / Date of birth", 0.427, 0.352, 0.539, 0.370),
        at("FRA", 0.283, 0.364, 0.311, 0.387),
        at("02 05 1989", 0.428, 0.368, 0.499, 0.391),
        at("N°DU DOCUMENT / Document No", 0.283, 0.392, 0.408, 0.410),
        at("DATE D'EXPIR. / Expiry date", 0.428, 0.396, 0.531, 0.415),
        at("DXPIR136U", 0.284, 0.409, 0.354, 0.431),
        at("08 02 2041", 0.428, 0.412, 0.499, 0.435),
    ];
    for number_label in ["N°DU DOCUMENT / Document No", "Nº DU DOCUMENT/Document No", "N°DU DOCUMENT"] {
        let mut lines = lines.clone();
        lines[12].text = number_label.to_string();
        let read = parse(&lines, RequestedType::NationalId, today()).unwrap();
        let f = &read.fields;
        assert_eq!(f.document_number.as_deref(), Some("DXPIR136U"), "{number_label}");
        assert_eq!(f.last_name.as_deref(), Some("GARCIA"));
        assert_eq!(f.gender.as_deref(), Some("F"));
        assert_eq!(f.date_of_birth, date(1989, 5, 2));
        assert_eq!(f.expiration_date, date(2041, 2, 8));
    }
}

#[test]
fn a_sex_label_without_its_letter_is_reported_for_a_second_look() {
    let mut lines = french_id_card();
    assert_eq!(unread_sex_label(&lines), None, "the F below it was read");
    assert_eq!((lines[6].text.as_str(), lines[9].text.as_str()), ("SEXE / Sex", "F"));
    lines.remove(9);
    assert_eq!(unread_sex_label(&lines), Some((6, 0.0)));
    // A US front's sex is on the label's line.
    assert_eq!(unread_sex_label(&us_front()), None);
}

#[test]
fn german_spanish_and_italian_labels_map_to_the_same_fields() {
    let cases = [
        ("PERSONALAUSWEIS", ["Name", "Vornamen", "Geburtsdatum", "Gültig bis"]),
        ("DOCUMENTO NACIONAL DE IDENTIDAD", ["Apellidos", "Nombre", "Fecha de nacimiento", "Validez"]),
        ("CARTA DI IDENTITÀ", ["Cognome", "Nome", "Data di nascita", "Scadenza"]),
    ];
    for (title, [surname, given, birth, expiry]) in cases {
        let lines = vec![
            line(title, 0.3, 0.03),
            line(&format!("{surname}: MUSTERMANN"), 0.35, 0.2),
            line(&format!("{given}: ERIKA"), 0.35, 0.3),
            line(&format!("{birth}: 12.08.1983"), 0.35, 0.4),
            line(&format!("{expiry}: 01.03.2031"), 0.35, 0.5),
        ];
        let read = parse(&lines, RequestedType::Auto, today()).unwrap();
        assert_eq!(read.layout, VizLayout::IdCard, "{title}");
        let f = &read.fields;
        assert_eq!(f.last_name.as_deref(), Some("MUSTERMANN"), "{title}");
        assert_eq!(f.first_name.as_deref(), Some("ERIKA"), "{title}");
        assert_eq!(f.date_of_birth, date(1983, 8, 12), "{title}");
        assert_eq!(f.expiration_date, date(2031, 3, 1), "{title}");
    }
}

#[test]
fn dates_follow_the_region_and_two_digit_years_take_the_right_century() {
    let us = |s| find_date(s, DateOrder::MonthFirst);
    let eu = |s| find_date(s, DateOrder::DayFirst);
    assert_eq!(us("08/31/1977").unwrap().as_birth_date(today()), date(1977, 8, 31));
    // A first number above 12 cannot be a month: read day first.
    assert_eq!(us("31/08/1977").unwrap().as_birth_date(today()), date(1977, 8, 31));
    assert_eq!(eu("03.04.05").unwrap().as_birth_date(today()), date(2005, 4, 3));
    assert_eq!(eu("03.04.35").unwrap().as_birth_date(today()), date(1935, 4, 3));
    assert_eq!(eu("03.04.35").unwrap().as_other_date(today()), date(2035, 4, 3));
    assert_eq!(eu("née le 13 07 1990 à Lyon").unwrap().as_birth_date(today()), date(1990, 7, 13));
    assert_eq!(eu("31.02.2020").unwrap().as_other_date(today()), None, "no such day");
    // Month names, as passports and some cards print them (first language before the slash).
    assert_eq!(eu("12 AUG/AOUT 74").unwrap().as_birth_date(today()), date(1974, 8, 12));
    assert_eq!(eu("19 OKT/OCT 1971").unwrap().as_birth_date(today()), date(1971, 10, 19));
    assert_eq!(eu("16 APR/ABR 07").unwrap().as_other_date(today()), date(2007, 4, 16));
    assert_eq!(eu("3 juil. 2031").unwrap().as_other_date(today()), date(2031, 7, 3));
    assert_eq!(eu("03 JUIL 2031").unwrap().as_other_date(today()), date(2031, 7, 3));
    assert_eq!(us("EXP 01 DEC 2029").unwrap().as_other_date(today()), date(2029, 12, 1));
    assert_eq!(eu("12 MAIN STREET"), None);
    assert_eq!(
        eu("4b 31.12:2015").unwrap().as_other_date(today()),
        date(2015, 12, 31),
        "a dot read as a colon"
    );
    // Field 3 glued to a date is not a date with four groups (the date is found after it).
    assert_eq!(date_at(&"3.11.09.1981".chars().collect::<Vec<_>>(), DateOrder::DayFirst), None);
    assert_eq!(eu("3.11.09.1981").unwrap().as_birth_date(today()), date(1981, 9, 11));
    for not_a_date in ["13AA00002", "1234567", "12.13.2020", "1.2", "123.04.2020", "12/04-2020"] {
        assert_eq!(eu(not_a_date), None, "{not_a_date}");
    }
}

#[test]
fn a_field_number_glued_to_its_value_is_still_a_field() {
    assert_eq!(split_glued_number("3.11.09.1981 MADRID"), "3. 11.09.1981 MADRID");
    assert_eq!(split_glued_number("5.51CF18499"), "5. 51CF18499");
    // As OCR read real specimens: a lettered number straight into its value, numbers glued to
    // their labels, labels to their values.
    assert_eq!(split_glued_number("4b31.12.2013"), "4b 31.12.2013");
    assert_eq!(split_glued_number("15SEX: F"), "15 SEX: F");
    assert_eq!(split_glued_number("4bEXP:"), "4b EXP:");
    assert_eq!(split_glued_number("4dLIC#WDLABCD456DG 9CLASS B"), "4d LIC WDLABCD456DG 9 CLASS B");
    assert_eq!(split_glued_number("18EYES:BRO"), "18 EYES: BRO");
    assert_eq!(split_glued_number("4aISs01/06/2015"), "4a ISs 01/06/2015");
    assert_eq!(split_glued_number("4a.01.09.2023  4b.01.09.2033"), "4a. 01.09.2023  4b. 01.09.2033");
    for unchanged in ["12.09.2013", "7.5 TONNES", "3. 11.09.1981", "4a. 12.09.2013 PARIS", "B1.A"] {
        assert_eq!(split_glued_number(unchanged), unchanged);
    }
    let mut lines = french_licence("");
    lines.truncate(10);
    lines[5] = line("3.14.07.1981 PARIS", 0.35, 0.32);
    lines[8] = line("5.13AA00002", 0.35, 0.50);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert_eq!(read.fields.date_of_birth, date(1981, 7, 14));
    assert_eq!(read.fields.document_number.as_deref(), Some("13AA00002"));
}

#[test]
fn field_8_glued_to_the_house_number_is_still_the_address() {
    // As OCR read Washington's specimen: `8 123 STREET ADDRESS` came out `8123 STREET ADDRESS`.
    let mut lines = us_front();
    lines[8] = line("8123 MAIN STREET", 0.35, 0.44);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert_eq!(read.fields.address.as_deref(), Some("123 MAIN STREET, HARRISBURG, PA 17101-0000"));
    // Field 8 read apart keeps every digit of a house number that starts with 8.
    lines[8] = line("8 8123 MAIN STREET", 0.35, 0.44);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert_eq!(read.fields.address.as_deref(), Some("8123 MAIN STREET, HARRISBURG, PA 17101-0000"));
    // Washington's placeholder street ends with a label's word: still the street, read apart or glued.
    for (printed, address) in [
        ("8123 STREET ADDRESS", "123 STREET ADDRESS, HARRISBURG, PA 17101-0000"),
        ("8 123 STREET ADDRESS", "123 STREET ADDRESS, HARRISBURG, PA 17101-0000"),
    ] {
        lines[8] = line(printed, 0.35, 0.44);
        let read = parse(&lines, RequestedType::Auto, today()).unwrap();
        assert_eq!(read.fields.address.as_deref(), Some(address), "{printed}");
    }
    // A label after a street with a value of its own, or a dotted one, is still a label.
    let segs = segments("123 MAIN STREET ADDRESS: 5 OAK ST");
    assert!(segs.iter().any(|s| s.key == Some(Key::Address)), "{segs:?}");
    let segs = segments("123 MAIN STREET ADDRESS:");
    assert!(segs.iter().any(|s| s.key == Some(Key::Address)), "{segs:?}");
    assert_eq!(glued_field_8("8123 STREET ADDRESS").as_deref(), Some("123 STREET ADDRESS"));
    for not_glued in ["8 MAIN STREET", "8123", "81234567 ST", "9123 MAIN ST", "8123 12 ST"] {
        assert_eq!(glued_field_8(not_glued), None, "{not_glued}");
    }
}

#[test]
fn labels_of_two_columns_read_as_one_line_take_their_values_from_below_each() {
    let lines = vec![
        line("PERSONALAUSWEIS / IDENTITY CARD", 0.30, 0.08),
        line("Name / Surname", 0.32, 0.26),
        line("WAGNER", 0.32, 0.29),
        // OCR joined the two labels; their values are two boxes.
        TextLine {
            right: 0.82,
            ..line("Staatsangehörigkeit / Nationality Geburtsdatum / Date of birth", 0.32, 0.52)
        },
        line("DEU", 0.32, 0.555),
        line("03 04 1994", 0.59, 0.55),
    ];
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert_eq!(read.fields.nationality.as_deref(), Some("DEU"));
    assert_eq!(read.fields.date_of_birth, date(1994, 4, 3));
    // Printed as a word, the nationality is still reported as the MRZ would give it.
    for (printed, code) in [("DEUTSCH", "DEU"), ("Française", "FRA"), ("ESPAÑOLA", "ESP"), ("GBR", "GBR")] {
        let mut lines = lines.clone();
        lines[4].text = printed.into();
        let read = parse(&lines, RequestedType::Auto, today()).unwrap();
        assert_eq!(read.fields.nationality.as_deref(), Some(code), "{printed}");
    }
}

#[test]
fn implausible_birth_dates_and_a_missing_expiry_fail_their_checks() {
    let mut lines = us_front();
    lines[4] = line("3 DOB: 01/07/2025", 0.35, 0.24); // born after the card was issued
    lines[5] = line("4b EXP: 01/08/2020", 0.70, 0.24);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    let (checks, reasons) = checks(&read, today());
    assert_eq!(check(&checks, "birth_date_plausible"), Some(false));
    assert_eq!(check(&checks, "not_expired"), Some(false));
    assert!(reasons.contains(&"expired") && reasons.contains(&"birth_date_implausible"));
    lines.remove(5);
    let read = parse(&lines, RequestedType::Auto, today()).unwrap();
    assert!(super::checks(&read, today()).1.contains(&"expiry_unreadable"));
}

#[test]
fn a_page_of_ordinary_text_is_not_a_card() {
    let lines = vec![line("Dear customer,", 0.1, 0.1), line("thank you for your order 12 of 2025", 0.1, 0.2)];
    assert!(parse(&lines, RequestedType::Auto, today()).is_none());
    assert!(parse(&[], RequestedType::NationalId, today()).is_none());
}

#[test]
fn folding_keeps_one_character_for_one() {
    for s in ["Maëlys-Gaëlle", "GÜLTIG BIS", "Straße", "N° DU DOCUMENT", "DATE D’EXPIR."] {
        assert_eq!(fold(s).chars().count(), s.chars().count(), "{s}");
    }
    assert_eq!(fold("Prénoms"), "PRENOMS");
}

fn passport_mrz() -> mrz::MrzRecord {
    mrz::parse(
        &["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"],
        today(),
    )
    .unwrap()
}

fn passport_viz() -> DocumentFields {
    DocumentFields {
        last_name: Some("ERIKSSON".into()),
        first_name: Some("ANNA MARIA".into()),
        date_of_birth: date(1974, 8, 12),
        document_number: Some("L898902C3".into()),
        expiration_date: date(2012, 4, 15),
        ..DocumentFields::default()
    }
}

#[test]
fn the_visual_zone_and_the_mrz_of_a_passport_are_cross_checked() {
    let record = passport_mrz();
    let (check, disagreements) = cross_check_mrz(&record, &passport_viz(), &[], today()).unwrap();
    assert_eq!(check.name, "viz_mrz_consistent");
    assert!(check.passed, "{disagreements:?}");

    // One OCR slip in a name and O for 0 in the number are not disagreements.
    let slips = DocumentFields {
        last_name: Some("ERIKSS0N".into()),
        document_number: Some("L8989O2C3".into()),
        ..passport_viz()
    };
    assert!(cross_check_mrz(&record, &slips, &[], today()).unwrap().0.passed);

    // Another birth date, number or name is.
    let forged = DocumentFields {
        date_of_birth: date(1974, 8, 13),
        document_number: Some("L898902C4".into()),
        last_name: Some("ERIKSEN".into()),
        ..passport_viz()
    };
    let (check, disagreements) = cross_check_mrz(&record, &forged, &[], today()).unwrap();
    assert!(!check.passed);
    assert_eq!(
        disagreements,
        vec![Disagreement::Surname, Disagreement::BirthDate, Disagreement::DocumentNumber]
    );

    assert!(
        cross_check_mrz(&record, &DocumentFields::default(), &[], today()).is_none(),
        "nothing to compare"
    );
}

#[test]
fn a_passport_page_is_cross_checked_by_the_values_it_prints() {
    let record = passport_mrz();
    // As OCR reads the ICAO specimen's data page: labels too noisy to map, values plain.
    let page = vec![
        line("Passport Numbert Nümt de pasaporte", 0.72, 0.12),
        line("L898902C3", 0.74, 0.18),
        line("Sumnamel Apelido", 0.33, 0.22),
        line("ERIKSSON", 0.34, 0.25),
        line("ANNA MARIA", 0.34, 0.33),
        line("12 AUGUSTIAGO 74", 0.34, 0.48),
        line("12 AUG/AGO 74", 0.34, 0.48),
        line("15 APR/ABR 12", 0.34, 0.70),
    ];
    let labelled = labelled_fields(&page, today());
    let (check, disagreements) = cross_check_mrz(&record, &labelled, &page, today()).unwrap();
    assert!(check.passed, "{disagreements:?}");

    // A label mapped to another line is forgiven when the MRZ's value is printed elsewhere...
    let mislabelled = DocumentFields { last_name: Some("ANNA MARIA".into()), ..DocumentFields::default() };
    assert!(cross_check_mrz(&record, &mislabelled, &page, today()).unwrap().0.passed);
    // ...but a birth date printed as another day, under its label, is a disagreement.
    let mut forged = page.clone();
    forged[5] = line("Date of birth", 0.34, 0.44);
    forged[6] = line("13 AUG/AGO 74", 0.34, 0.48);
    let labelled = labelled_fields(&forged, today());
    assert_eq!(labelled.date_of_birth, date(1974, 8, 13));
    let (check, disagreements) = cross_check_mrz(&record, &labelled, &forged, today()).unwrap();
    assert!(!check.passed);
    assert_eq!(disagreements, vec![Disagreement::BirthDate]);
}

#[test]
fn labels_in_their_own_boxes_take_the_value_on_their_right() {
    // As OCR reads the Montana specimen: field numbers, labels and values in separate boxes, and
    // field 1's number too small to be detected.
    let row = |text: &str, left: f32, top: f32, right: f32| TextLine { right, ..line(text, left, top) };
    let lines = vec![
        row("MONTANA", 0.01, 0.04, 0.33),
        row("DRIVER LICENSE", 0.49, 0.04, 0.82),
        row("4d LIC #:", 0.33, 0.37, 0.43),
        row("0812319684104", 0.43, 0.36, 0.72),
        row("3 D0B:", 0.33, 0.44, 0.43),
        row("08/04/1968", 0.43, 0.43, 0.63),
        row("4bEXP:", 0.33, 0.51, 0.42),
        row("08/04/2023", 0.43, 0.50, 0.61),
        row("15SEX: F", 0.80, 0.37, 0.90),
        row("SAMPLE", 0.36, 0.66, 0.49),
        row("2", 0.34, 0.71, 0.36),
        row("BRENDA LYNN", 0.36, 0.70, 0.58),
    ];
    let read = parse(&lines, RequestedType::DriversLicense, today()).unwrap();
    assert_eq!(read.jurisdiction.as_deref(), Some("MT"));
    let f = &read.fields;
    assert_eq!(f.document_number.as_deref(), Some("0812319684104"));
    assert_eq!(f.date_of_birth, date(1968, 8, 4));
    assert_eq!(f.expiration_date, date(2023, 8, 4));
    assert_eq!(f.gender.as_deref(), Some("F"));
    assert_eq!(f.first_name.as_deref(), Some("BRENDA"));
    assert_eq!(f.middle_name.as_deref(), Some("LYNN"));
    assert_eq!(f.last_name.as_deref(), Some("SAMPLE"), "the line right above field 2");
}

#[test]
fn a_name_without_a_label_is_the_line_above_an_address_ending_with_a_state_and_zip() {
    // As OCR reads the West Virginia specimen: no field numbers, no name label, the name given
    // name first in large type over an unlabelled two-line address.
    let row = |text: &str, left: f32, top: f32, right: f32, bottom: f32| TextLine {
        text: text.to_string(),
        confidence: 0.98,
        left,
        top,
        right,
        bottom,
    };
    let mut lines = vec![
        row("WEST VIRGINIA", 0.14, 0.07, 0.48, 0.14),
        row("Driver's License", 0.70, 0.10, 0.99, 0.17),
        row("CHRIS SMITH", 0.34, 0.22, 0.67, 0.31),
        row("Main Street, Charleston,", 0.34, 0.32, 0.74, 0.39),
        row("WV 25301", 0.34, 0.39, 0.52, 0.45),
        row("LIC #:", 0.34, 0.58, 0.42, 0.63),
        row("034568", 0.43, 0.57, 0.56, 0.63),
        row("DOB:", 0.34, 0.64, 0.41, 0.70),
        row("03/23/1988", 0.43, 0.64, 0.62, 0.70),
        row("ORGAN DONOR", 0.73, 0.89, 0.89, 0.93),
    ];
    let read = parse(&lines, RequestedType::DriversLicense, today()).unwrap();
    let f = &read.fields;
    assert_eq!(f.last_name.as_deref(), Some("SMITH"));
    assert_eq!(f.first_name.as_deref(), Some("CHRIS"));
    assert_eq!(f.address.as_deref(), Some("Main Street, Charleston,, WV 25301"));
    assert_eq!(f.date_of_birth, date(1988, 3, 23));
    // Family name first when a comma follows it.
    lines[2].text = "SMITH, CHRIS ALLEN".into();
    let f = parse(&lines, RequestedType::DriversLicense, today()).unwrap().fields;
    assert_eq!(
        (f.last_name.as_deref(), f.first_name.as_deref(), f.middle_name.as_deref()),
        (Some("SMITH"), Some("CHRIS"), Some("ALLEN"))
    );
    // Without a state and ZIP code to end the lines below, two words are not taken for a name.
    lines[4].text = "456789".into();
    let f = parse(&lines, RequestedType::DriversLicense, today()).unwrap().fields;
    assert_eq!((f.last_name, f.first_name, f.address), (None, None, None));
    // A labelled name wins: the free lines stay free.
    let f = parse(&us_front(), RequestedType::Auto, today()).unwrap().fields;
    assert_eq!(f.last_name.as_deref(), Some("SAMPLE"));
    assert!(is_unlabelled_name("JEAN-PAUL O'BRIEN"));
    for not_a_name in ["WEST VIRGINIA", "DRIVER LICENSE", "123 MAIN ST", "SMITH", "A B C D E"] {
        assert!(!is_unlabelled_name(not_a_name), "{not_a_name}");
    }
    assert!(ends_with_state_and_zip("123 MAIN ST, HELENA, MT 59601-1234"));
    for not_zip in ["HELENA MT", "HELENA, XX 59601", "MT 5960", "MT 59601-12345"] {
        assert!(!ends_with_state_and_zip(not_zip), "{not_zip}");
    }
}

#[test]
fn a_canadian_front_is_read_with_its_province_and_year_first_dates() {
    // An Ontario-style front: AAMVA numbering, `LICENCE`, a bilingual title, dates year first.
    let lines = vec![
        line("ONTARIO", 0.05, 0.03),
        line("DRIVER'S LICENCE / PERMIS DE CONDUIRE", 0.45, 0.03),
        line("4d S1234-56789-01234", 0.35, 0.18),
        line("1 SMITH", 0.35, 0.26),
        line("2 JOHN ALLEN", 0.35, 0.31),
        line("8 123 MAIN STREET", 0.35, 0.38),
        line("TORONTO, ON M5V 2T6", 0.37, 0.43),
        line("3 DOB/DDN 1988/03/23", 0.35, 0.52),
        line("4a ISS/DÉL 2021/06/01", 0.35, 0.58),
        line("4b EXP 2026-03-23", 0.65, 0.58),
        line("15 SEX/SEXE M", 0.35, 0.66),
    ];
    let read = parse(&lines, RequestedType::DriversLicense, today()).unwrap();
    assert_eq!(read.layout, VizLayout::Aamva);
    assert_eq!(read.jurisdiction.as_deref(), Some("ON"));
    let f = &read.fields;
    assert_eq!(f.issuing_country.as_deref(), Some("CAN"));
    assert_eq!(f.issuing_jurisdiction.as_deref(), Some("ON"));
    assert_eq!((f.last_name.as_deref(), f.first_name.as_deref()), (Some("SMITH"), Some("JOHN")));
    assert_eq!(f.date_of_birth, date(1988, 3, 23));
    assert_eq!(f.issue_date, date(2021, 6, 1));
    assert_eq!(f.expiration_date, date(2026, 3, 23));
    assert_eq!(f.address.as_deref(), Some("123 MAIN STREET, TORONTO, ON M5V 2T6"));
    assert_eq!(f.document_number.as_deref(), Some("S12345678901234"));
    assert_eq!(f.gender.as_deref(), Some("M"));
    // The front's provinces are the barcode's Canadian jurisdictions.
    assert!(CA_PROVINCES.iter().all(|(_, code)| is_canadian_jurisdiction(code)));
    // No US number shape applies to a province.
    let (checks, _) = checks(&read, today());
    assert_eq!(check(&checks, "document_number_format"), None);
    assert!(ends_with_state_and_zip("TORONTO, ON M5V 2T6") && ends_with_state_and_zip("QUEBEC QC G1R4S9"));
    assert!(!ends_with_state_and_zip("TORONTO, ON M5V") && !ends_with_state_and_zip("TORONTO, WA M5V 2T6"));
    // OCR's letter-for-digit confusions in a postal code are undone by its shape.
    assert_eq!(postal_code_fixed("VICTORIA, BC X0G 0SO"), "VICTORIA, BC X0G 0S0");
    assert_eq!(postal_code_fixed("TORONTO, ON M5V 2T6"), "TORONTO, ON M5V 2T6");
    for unchanged in ["HELENA, MT 59601", "VICTORIA, BC XOG", "12 RUE DE LA PAIX 75002 PARIS", "ON"] {
        assert_eq!(postal_code_fixed(unchanged), unchanged);
    }
    // OCR glues numbers and labels to values: `1ANDERSON`, `4d DLN6840236`, `839CALLE MAYOR`.
    assert_eq!(split_glued_number("1ANDERSON"), "1 ANDERSON");
    assert_eq!(split_glued_number("4d DLN6840236"), "4d DLN 6840236");
    assert_eq!(split_glued_number("3 DOB1961/02/22"), "3 DOB 1961/02/22");
    for unchanged in ["1ST AVENUE", "DOBSON", "DL12345", "2ND"] {
        assert_eq!(split_glued_number(unchanged), unchanged);
    }
    assert_eq!(glued_field_8("839CALLE MAYOR").as_deref(), Some("39 CALLE MAYOR"));
    // Year-first dates hold in every region; implausible ones are no dates.
    assert_eq!(
        find_date("1990.03.23", DateOrder::DayFirst).map(|d| (d.year, d.month, d.day)),
        Some((1990, 3, 23))
    );
    assert!(find_date("1234/56/78", DateOrder::MonthFirst).is_none());
}

#[test]
fn a_label_whose_value_was_not_read_takes_no_other_labels_value() {
    // As the detector left out a lone `M` on a French ID card: the sex label must not take the
    // nationality's `FRA` below it, which would leave the nationality without its value.
    let lines = vec![
        line("CARTE NATIONALE D'IDENTITÉ / IDENTITY CARD", 0.29, 0.16),
        line("NOM / Surname", 0.30, 0.23),
        line("SCHMIDT", 0.30, 0.27),
        line("SEXE / Sex", 0.30, 0.40),
        line("NATIONALITÉ / Nationality", 0.30, 0.47),
        line("FRA", 0.30, 0.52),
        line("N° DU DOCUMENT / Document No", 0.30, 0.58),
        line("S7AHC0EBB", 0.30, 0.62),
    ];
    let f = parse(&lines, RequestedType::NationalId, today()).unwrap().fields;
    assert_eq!(f.gender, None);
    assert_eq!(f.nationality.as_deref(), Some("FRA"));
    assert_eq!(f.document_number.as_deref(), Some("S7AHC0EBB"));
    for (key, text, fits_it) in [
        (Key::Sex, "FRA", false),
        (Key::Sex, "F", true),
        (Key::BirthDate, "FRA", false),
        (Key::BirthDate, "20 01 1968", true),
        (Key::Number, "GQQJZDXQN", true),
        (Key::Nationality, "1968", false),
        (Key::Address, "FRA", true),
    ] {
        assert_eq!(fits(key, text, DateOrder::DayFirst), fits_it, "{key:?} {text}");
    }
}
