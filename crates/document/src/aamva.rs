//! AAMVA driver's licence / ID card payloads (the text inside the PDF417 barcode), versions 1 to 10.
//!
//! Real payloads often break the standard: byte-order marks, missing or wrong subfile offsets,
//! `|` or odd control characters as separators, padding. The parser therefore reads the header
//! for the version and issuer, then finds data elements by their 3-letter IDs after any separator
//! instead of trusting the subfile offsets.

use std::collections::BTreeMap;

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AamvaError {
    #[error("not an AAMVA payload (no ANSI/AAMVA header)")]
    NoHeader,
    #[error("AAMVA header is truncated or malformed")]
    BadHeader,
    #[error("AAMVA payload holds no data elements")]
    NoElements,
}

/// Parsed licence. Names and values are trimmed; placeholders such as `NONE` in name parts are dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct AamvaRecord {
    /// AAMVA version number (1 = AAMVA DL/ID-2000, … 10 = 2020).
    pub version: u8,
    pub jurisdiction_version: Option<u8>,
    /// Issuer identification number (6 digits).
    pub iin: String,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub suffix: Option<String>,
    pub document_number: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub expiry_date: Option<NaiveDate>,
    pub issue_date: Option<NaiveDate>,
    /// `M`, `F` or `X`.
    pub sex: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ICAO alpha-3 (`USA` or `CAN`).
    pub country: Option<String>,
    /// Every element found, by ID (first occurrence wins).
    pub elements: BTreeMap<String, String>,
}

impl std::fmt::Debug for AamvaRecord {
    // Personal data stays out of logs: only the shape of the record is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AamvaRecord")
            .field("version", &self.version)
            .field("iin", &self.iin)
            .field("elements", &self.elements.len())
            .finish_non_exhaustive()
    }
}

impl AamvaRecord {
    /// First, middle, last name and suffix joined with spaces.
    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.middle_name, &self.last_name, &self.suffix]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        if parts.is_empty() { None } else { Some(parts.join(" ")) }
    }

    /// "street, city, state postal", skipping missing parts.
    pub fn address(&self) -> Option<String> {
        let state_zip: Vec<&str> =
            [&self.state, &self.postal_code].into_iter().filter_map(|p| p.as_deref()).collect();
        let state_zip = state_zip.join(" ");
        let parts: Vec<&str> = [self.street.as_deref(), self.city.as_deref(), Some(state_zip.as_str())]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() { None } else { Some(parts.join(", ")) }
    }
}

const CANADIAN_JURISDICTIONS: [&str; 13] =
    ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"];

/// A Canadian province's or territory's code (the barcode's jurisdiction, a card front's header).
pub(crate) fn is_canadian_jurisdiction(code: &str) -> bool {
    CANADIAN_JURISDICTIONS.contains(&code)
}

fn is_separator(c: char) -> bool {
    // Line feed, record separator, carriage return, pipes, and C1 controls / replacement characters
    // that some scanners put in place of the separators.
    c.is_control() || c == '|' || c == '\u{FFFD}' || c == '\u{FEFF}'
}

/// Whether `s` starts with a plausible data element ID (`D` or `Z` then two upper-case letters).
fn element_id(s: &str) -> Option<&str> {
    let id = s.get(0..3)?;
    let b = id.as_bytes();
    if (b[0] == b'D' || b[0] == b'Z') && b[1].is_ascii_uppercase() && b[2].is_ascii_uppercase() {
        Some(id)
    } else {
        None
    }
}

struct Header {
    version: u8,
    jurisdiction_version: Option<u8>,
    iin: String,
    /// Byte offset in the cleaned text where the data starts (after the subfile designators).
    body_start: usize,
}

fn digits(s: &str, start: usize, len: usize) -> Option<u32> {
    let part = s.get(start..start + len)?;
    if part.bytes().all(|b| b.is_ascii_digit()) { part.parse().ok() } else { None }
}

fn parse_header(text: &str) -> Result<Header, AamvaError> {
    // The marker sits within the first few bytes after the compliance indicator (`@`, separators).
    let window = text.char_indices().take(64).last().map(|(i, c)| i + c.len_utf8()).unwrap_or(0);
    let head = &text[..window];
    let marker = ["ANSI ", "AAMVA", "ANSI"]
        .iter()
        .find_map(|m| head.find(m).map(|i| i + m.len()))
        .ok_or(AamvaError::NoHeader)?;
    let rest = &text[marker..];
    let iin =
        rest.get(0..6).filter(|s| s.bytes().all(|b| b.is_ascii_digit())).ok_or(AamvaError::BadHeader)?;
    let version = digits(rest, 6, 2).ok_or(AamvaError::BadHeader)? as u8;
    // Version 1 has no jurisdiction version field.
    let (jurisdiction_version, entries_at) =
        if version <= 1 { (None, 8) } else { (digits(rest, 8, 2).map(|v| v as u8), 10) };
    let entries = digits(rest, entries_at, 2).unwrap_or(1) as usize;
    let designators_start = marker + entries_at + 2;
    // Skip the subfile designators; they are often malformed, so look for the first element ID
    // beginning with D (every licence subfile starts with D elements) after them.
    let after = text.get(designators_start..).unwrap_or("");
    let skip = entries.clamp(1, 9) * 10;
    let mut body_start = None;
    for (i, _) in after.char_indices() {
        let s = &after[i..];
        if s.starts_with('D')
            && let Some(id) = element_id(s)
            && is_known_d_element(id)
        {
            body_start = Some(designators_start + i);
            break;
        }
        if i > skip + 16 {
            break;
        }
    }
    let body_start = body_start.ok_or(AamvaError::NoElements)?;
    Ok(Header { version, jurisdiction_version, iin: iin.to_string(), body_start })
}

/// IDs defined by the AAMVA standard for the DL/ID subfiles (D A*, D B*, D C*, D D*).
fn is_known_d_element(id: &str) -> bool {
    let b = id.as_bytes();
    b[0] == b'D' && matches!(b[1], b'A' | b'B' | b'C' | b'D') && b[2].is_ascii_uppercase()
}

fn split_elements(body: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut first = true;
    for segment in body.split(is_separator) {
        let mut seg = segment.trim_start_matches(' ');
        // A subfile starts with its type ("DL", "ID") glued to its first element.
        if !first
            && (seg.starts_with("DL") || seg.starts_with("ID"))
            && seg.get(2..).and_then(element_id).is_some_and(is_known_d_element)
        {
            seg = &seg[2..];
        }
        first = false;
        let Some(id) = element_id(seg) else { continue };
        let value = seg[3..].trim().to_string();
        out.entry(id.to_string()).or_insert(value);
    }
    out
}

fn meaningful(v: Option<&String>) -> Option<String> {
    let v = v?.trim().trim_matches(',').trim();
    let upper = v.to_ascii_uppercase();
    if v.is_empty() || matches!(upper.as_str(), "NONE" | "UNAVL" | "UNAVAIL" | "UNAVAILABLE" | "NULL") {
        None
    } else {
        Some(v.to_string())
    }
}

/// Parses an 8-digit date, trying the expected order first. The two orders cannot both give a
/// plausible year (19xx/20xx is never a month), so the fallback is safe for mislabelled payloads.
fn parse_date(value: Option<&String>, canadian_order: bool) -> Option<NaiveDate> {
    let v = value?.trim();
    let v = v.get(0..8)?;
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| v[a..b].parse::<u32>().ok();
    let ccyymmdd = || NaiveDate::from_ymd_opt(n(0, 4)? as i32, n(4, 6)?, n(6, 8)?);
    let mmddccyy = || NaiveDate::from_ymd_opt(n(4, 8)? as i32, n(0, 2)?, n(2, 4)?);
    let plausible = |d: NaiveDate| (1900..=2200).contains(&chrono::Datelike::year(&d));
    let (a, b) = if canadian_order { (ccyymmdd(), mmddccyy()) } else { (mmddccyy(), ccyymmdd()) };
    a.filter(|d| plausible(*d)).or(b.filter(|d| plausible(*d)))
}

fn sex(value: Option<&String>) -> Option<String> {
    match value?.trim().to_ascii_uppercase().as_str() {
        "1" | "M" => Some("M".into()),
        "2" | "F" => Some("F".into()),
        "9" | "X" => Some("X".into()),
        _ => None,
    }
}

fn postal(value: Option<&String>) -> Option<String> {
    let v = meaningful(value)?;
    // US ZIP codes come padded to 9 or more digits without a dash; "0000" means no ZIP+4.
    if v.len() >= 9 && v.bytes().all(|b| b.is_ascii_digit()) {
        let (zip, plus4) = (&v[..5], &v[5..9]);
        return Some(if plus4 == "0000" { zip.to_string() } else { format!("{zip}-{plus4}") });
    }
    Some(v)
}

/// Splits a comma or space separated name list into parts.
fn name_parts(v: &str) -> Vec<String> {
    let sep: &[char] = if v.contains(',') { &[','] } else { &[' '] };
    v.split(sep).map(|p| p.trim().to_string()).collect()
}

/// Parses an AAMVA payload. `today` is only used to keep the signature uniform with the MRZ parser
/// (dates in AAMVA carry four-digit years).
pub fn parse(payload: &str, _today: NaiveDate) -> Result<AamvaRecord, AamvaError> {
    let text = payload.trim_start_matches('\u{FEFF}');
    let header = parse_header(text)?;
    let elements = split_elements(&text[header.body_start..]);
    if elements.is_empty() {
        return Err(AamvaError::NoElements);
    }
    let get = |id: &str| elements.get(id);

    let state = meaningful(get("DAJ")).map(|s| s.to_ascii_uppercase());
    let country_el = meaningful(get("DCG")).map(|s| s.to_ascii_uppercase());
    let canadian =
        country_el.as_deref() == Some("CAN") || state.as_deref().is_some_and(is_canadian_jurisdiction);
    let country = match country_el.as_deref() {
        Some("USA") | Some("CAN") => country_el.clone(),
        _ if canadian => Some("CAN".into()),
        _ if state.is_some() => Some("USA".into()),
        _ => None,
    };
    // Version 1 wrote dates as CCYYMMDD everywhere; later US versions use MMDDCCYY.
    let ccyy_first = canadian || header.version <= 1;

    let (mut first, mut middle, mut last, mut suffix) = (
        meaningful(get("DAC")).or_else(|| meaningful(get("DCT")).and_then(|v| first_of(&v))),
        meaningful(get("DAD")).or_else(|| meaningful(get("DCT")).and_then(|v| rest_of(&v))),
        meaningful(get("DCS")).or_else(|| meaningful(get("DAB"))),
        meaningful(get("DCU")).or_else(|| meaningful(get("DAE"))),
    );
    if last.is_none()
        && let Some(full) = meaningful(get("DAA"))
    {
        // Version 1 full name: "LAST,FIRST,MIDDLE,SUFFIX" or, without commas, "FIRST MIDDLE… LAST".
        let parts = name_parts(&full);
        let non_empty = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned();
        if full.contains(',') {
            last = non_empty(parts.first());
            first = first.or_else(|| non_empty(parts.get(1)));
            middle = middle.or_else(|| non_empty(parts.get(2)));
            suffix = suffix.or_else(|| non_empty(parts.get(3)));
        } else {
            let words: Vec<&String> = parts.iter().filter(|p| !p.is_empty()).collect();
            if let Some((l, rest)) = words.split_last() {
                last = Some((*l).clone());
                first = first.or_else(|| rest.first().map(|s| (*s).clone()));
                if rest.len() > 1 {
                    middle = middle
                        .or_else(|| Some(rest[1..].iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")));
                }
            }
        }
    }

    Ok(AamvaRecord {
        version: header.version,
        jurisdiction_version: header.jurisdiction_version,
        iin: header.iin.clone(),
        first_name: first,
        middle_name: middle,
        last_name: last,
        suffix,
        document_number: get("DAQ").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()),
        birth_date: parse_date(get("DBB"), ccyy_first),
        expiry_date: parse_date(get("DBA"), ccyy_first),
        issue_date: parse_date(get("DBD"), ccyy_first),
        sex: sex(get("DBC")),
        street: meaningful(get("DAG")),
        city: meaningful(get("DAI")),
        state,
        postal_code: postal(get("DAK")),
        country,
        elements,
    })
}

fn first_of(given: &str) -> Option<String> {
    name_parts(given).into_iter().find(|p| !p.is_empty())
}

fn rest_of(given: &str) -> Option<String> {
    let parts: Vec<String> = name_parts(given).into_iter().filter(|p| !p.is_empty()).collect();
    if parts.len() > 1 { Some(parts[1..].join(" ")) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, day)
    }

    /// Builds a standard-conforming payload (fake data) with correct subfile designators.
    fn fake_payload(version: u8, iin: &str, elements: &[&str]) -> String {
        let data = format!("DL{}\r", elements.join("\n"));
        let version_fields =
            if version <= 1 { format!("{version:02}01") } else { format!("{version:02}0001") };
        let header_len = 4 + 5 + 6 + version_fields.len() + 10;
        format!("@\n\u{1e}\rANSI {iin}{version_fields}DL{header_len:04}{:04}{data}", data.len())
    }

    fn us_elements(first: &str) -> Vec<&str> {
        vec![first, "DAQD12345678", "DAG1 MAIN ST", "DAIRICHMOND", "DAJVA", "DAK232191234  ", "DCGUSA"]
    }

    #[test]
    fn version_1_full_name_and_ccyymmdd() {
        let mut els = us_elements("DAAPUBLIC,JOHN,QUINCY,JR");
        els.extend(["DBB19700115", "DBA20300115", "DBD20220115", "DBC1"]);
        let r = parse(&fake_payload(1, "636000", &els), today()).unwrap();
        assert_eq!(r.version, 1);
        assert_eq!(r.jurisdiction_version, None);
        assert_eq!(r.iin, "636000");
        assert_eq!(r.last_name.as_deref(), Some("PUBLIC"));
        assert_eq!(r.first_name.as_deref(), Some("JOHN"));
        assert_eq!(r.middle_name.as_deref(), Some("QUINCY"));
        assert_eq!(r.suffix.as_deref(), Some("JR"));
        assert_eq!(r.full_name().as_deref(), Some("JOHN QUINCY PUBLIC JR"));
        assert_eq!(r.document_number.as_deref(), Some("D12345678"));
        assert_eq!(r.birth_date, d(1970, 1, 15));
        assert_eq!(r.expiry_date, d(2030, 1, 15));
        assert_eq!(r.issue_date, d(2022, 1, 15));
        assert_eq!(r.sex.as_deref(), Some("M"));
        assert_eq!(r.country.as_deref(), Some("USA"));
        assert_eq!(r.address().as_deref(), Some("1 MAIN ST, RICHMOND, VA 23219-1234"));
    }

    #[test]
    fn version_2_given_names_element_and_mmddccyy() {
        let mut els = us_elements("DCSPUBLIC");
        els.extend(["DCTJOHN QUINCY", "DBB01151970", "DBA01152030", "DBC2"]);
        let r = parse(&fake_payload(2, "636000", &els), today()).unwrap();
        assert_eq!(r.version, 2);
        assert_eq!(r.jurisdiction_version, Some(0));
        assert_eq!(r.first_name.as_deref(), Some("JOHN"));
        assert_eq!(r.middle_name.as_deref(), Some("QUINCY"));
        assert_eq!(r.last_name.as_deref(), Some("PUBLIC"));
        assert_eq!(r.birth_date, d(1970, 1, 15));
        assert_eq!(r.expiry_date, d(2030, 1, 15));
        assert_eq!(r.sex.as_deref(), Some("F"));
    }

    #[test]
    fn version_3_canadian_comma_given_names() {
        let els = [
            "DCSTESTER,",
            "DCTMARY,ANN",
            "DBB19960603",
            "DBA20300603",
            "DBC2",
            "DAQS9244-43879-65702",
            "DAG123 ST GEORGE ST E,",
            "DAIFERGUS",
            "DAJON",
            "DAKN1M 3J6    ",
            "DCGCAN",
        ];
        let r = parse(&fake_payload(3, "636012", &els), today()).unwrap();
        assert_eq!(r.version, 3);
        assert_eq!(r.last_name.as_deref(), Some("TESTER"));
        assert_eq!(r.first_name.as_deref(), Some("MARY"));
        assert_eq!(r.middle_name.as_deref(), Some("ANN"));
        assert_eq!(r.birth_date, d(1996, 6, 3));
        assert_eq!(r.expiry_date, d(2030, 6, 3));
        assert_eq!(r.country.as_deref(), Some("CAN"));
        assert_eq!(r.address().as_deref(), Some("123 ST GEORGE ST E, FERGUS, ON N1M 3J6"));
    }

    fn modern(version: u8) -> AamvaRecord {
        let mut els = us_elements("DCSPUBLIC");
        els.extend(["DACJOHN", "DADQUINCY", "DCUIII", "DBB07041976", "DBA07042031", "DBC9"]);
        let r = parse(&fake_payload(version, "636000", &els), today()).unwrap();
        assert_eq!(r.version, version);
        r
    }

    #[test]
    fn versions_4_to_10_separate_name_elements() {
        for version in 4..=10 {
            let r = modern(version);
            assert_eq!(r.first_name.as_deref(), Some("JOHN"), "version {version}");
            assert_eq!(r.middle_name.as_deref(), Some("QUINCY"), "version {version}");
            assert_eq!(r.last_name.as_deref(), Some("PUBLIC"), "version {version}");
            assert_eq!(r.suffix.as_deref(), Some("III"), "version {version}");
            assert_eq!(r.document_number.as_deref(), Some("D12345678"), "version {version}");
            assert_eq!(r.birth_date, d(1976, 7, 4), "version {version}");
            assert_eq!(r.expiry_date, d(2031, 7, 4), "version {version}");
            assert_eq!(r.sex.as_deref(), Some("X"), "version {version}");
        }
    }

    #[test]
    fn canadian_version_6_uses_ccyymmdd() {
        let els = [
            "DCSSMITH",
            "DACJANE",
            "DADNONE",
            "DBB19850230",
            "DBB19850228",
            "DBA20320228",
            "DAJBC",
            "DAQ1234567",
        ];
        let r = parse(&fake_payload(6, "636028", &els), today()).unwrap();
        // First occurrence wins, and an impossible date is None rather than a guess.
        assert_eq!(r.birth_date, None);
        assert_eq!(r.expiry_date, d(2032, 2, 28));
        assert_eq!(r.middle_name, None);
        assert_eq!(r.country.as_deref(), Some("CAN"));
    }

    #[test]
    fn real_world_quirks() {
        // BOM, pipes as separators, no record separator, header glued to the first element.
        let piped = "\u{feff}@|\u{1e}|ANSI 636002040002DL00410268ZM03090056DLDCAD|DBA07072020|DCSSMITH|DACROBERT|\
                     DADLOWNEY|DBB07071977|DBC1|DAQS65807412|DAJMA|DAK0210800000  |DCGUSA|";
        let r = parse(piped, today()).unwrap();
        assert_eq!(r.version, 4);
        assert_eq!(r.full_name().as_deref(), Some("ROBERT LOWNEY SMITH"));
        assert_eq!(r.document_number.as_deref(), Some("S65807412"));
        assert_eq!(r.birth_date, d(1977, 7, 7));
        assert_eq!(r.expiry_date, d(2020, 7, 7));
        assert_eq!(r.postal_code.as_deref(), Some("02108"));
        // C1 control characters instead of line feeds.
        let odd = "@\u{90}\n\u{90}ANSI 636006090002DL00410259ZC03000020DLDAQ123456780\u{90}\n\u{90}DCSMOTORIST\u{90}\n\
                   \u{90}DACWENDY\u{90}\n\u{90}DBB01261966\u{90}\n\u{90}DBA01262026\u{90}\n";
        let r = parse(odd, today()).unwrap();
        assert_eq!(r.version, 9);
        assert_eq!(r.document_number.as_deref(), Some("123456780"));
        assert_eq!(r.first_name.as_deref(), Some("WENDY"));
        assert_eq!(r.birth_date, d(1966, 1, 26));
        // Version 1 without commas: first, middles, last.
        let pa = "@\n\nANSI 6360250101DL00290194DLDAQ26798765\nDAAJOHN ROBERT LEE SMITH\nDBA20200203\nDBB19860202\n";
        let r = parse(pa, today()).unwrap();
        assert_eq!(r.first_name.as_deref(), Some("JOHN"));
        assert_eq!(r.middle_name.as_deref(), Some("ROBERT LEE"));
        assert_eq!(r.last_name.as_deref(), Some("SMITH"));
        assert_eq!(r.birth_date, d(1986, 2, 2));
    }

    #[test]
    fn rejects_non_aamva() {
        assert_eq!(parse("hello world", today()), Err(AamvaError::NoHeader));
        assert_eq!(parse("@\nANSI 63", today()), Err(AamvaError::BadHeader));
        assert!(parse("@\nANSI 636000090001DL00000000", today()).is_err());
        assert!(parse("", today()).is_err());
    }

    /// Real payloads from the shared data set, checked against the values published with them
    /// (IdParser's test suite).
    #[test]
    fn shared_payloads_match_published_values() {
        let dir = idverify_testkit::shared_data().join("pdf417/aamva_payloads_text_only/dev");
        if !dir.is_dir() {
            eprintln!("SKIP: {} not found", dir.display());
            return;
        }
        type Ymd = (i32, u32, u32);
        let cases: [(&str, &str, &str, &str, Ymd, Ymd); 5] = [
            ("MA_2009.txt", "ROBERT", "SMITH", "S65807412", (1977, 7, 7), (2020, 7, 7)),
            ("MA_2016.txt", "MORRIS", "SAMPLE", "S12345678", (1971, 12, 31), (2021, 8, 16)),
            ("CT_No_Middle_Name.txt", "CHUNG", "WANG", "035032278", (1949, 3, 3), (2023, 3, 3)),
            ("FL.txt", "JOEY", "TESTER", "H574712510891", (1941, 5, 9), (2022, 3, 9)),
            ("NY.txt", "M", "Michael", "NONE", (2013, 8, 31), (2013, 8, 31)),
        ];
        for (file, first, last, number, birth, expiry) in cases {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let r = parse(&String::from_utf8_lossy(&bytes), today()).unwrap();
            assert_eq!(r.first_name.as_deref(), Some(first), "{file}");
            assert_eq!(r.last_name.as_deref(), Some(last), "{file}");
            assert_eq!(r.document_number.as_deref(), Some(number), "{file}");
            assert_eq!(r.birth_date, d(birth.0, birth.1, birth.2), "{file}");
            assert_eq!(r.expiry_date, d(expiry.0, expiry.1, expiry.2), "{file}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = parse(&s, today());
        }

        #[test]
        fn parse_never_panics_after_a_header(body in "[A-Z0-9\\n\\r|\u{1e}\u{90} ,]{0,200}", v in 0u8..12) {
            let payload = format!("@\n\u{1e}\rANSI 636000{v:02}0001DL00410000{body}");
            let _ = parse(&payload, today());
        }
    }
}
