//! ICAO 9303 machine readable zone parsing (TD1, TD2, TD3, MRV-A, MRV-B), and the French national
//! ID card's own 2×36 layout (cards issued 1988 to 2021, valid in their millions until 2031).
//!
//! The parser applies a layout-aware character correction (digits where the layout demands digits,
//! letters where it demands letters) but never "repairs" a field from its check digit: a wrong read
//! must fail its check, not be silently guessed into a valid one.

use chrono::{Datelike, NaiveDate};

/// The physical MRZ layouts of ICAO 9303.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MrzFormat {
    /// ID card size: 3 lines of 30.
    Td1,
    /// 2 lines of 36 (ID cards, some travel documents).
    Td2,
    /// Passport: 2 lines of 44.
    Td3,
    /// Visa full size: 2 lines of 44, document code `V`.
    MrvA,
    /// Visa small size: 2 lines of 36, document code `V`.
    MrvB,
    /// French national ID card before 2021: 2 lines of 36 starting `IDFRA`, not ICAO's TD2. Line 1:
    /// `ID`, `FRA`, surname (25), administrative code (6). Line 2: card number (12), its check
    /// digit, given names (14), birth date, its check digit, sex, a check digit over both lines.
    /// No expiry date (printed on the back).
    FraId,
}

impl MrzFormat {
    /// Stable name used as `source` in scans.
    pub fn source_name(self) -> &'static str {
        match self {
            MrzFormat::Td1 => "mrz_td1",
            MrzFormat::Td2 => "mrz_td2",
            MrzFormat::Td3 => "mrz_td3",
            MrzFormat::MrvA => "mrz_mrva",
            MrzFormat::MrvB => "mrz_mrvb",
            MrzFormat::FraId => "mrz_fra_id",
        }
    }

    /// (number of lines, line length)
    pub fn shape(self) -> (usize, usize) {
        match self {
            MrzFormat::Td1 => (3, 30),
            MrzFormat::Td2 | MrzFormat::MrvB | MrzFormat::FraId => (2, 36),
            MrzFormat::Td3 | MrzFormat::MrvA => (2, 44),
        }
    }
}

/// One validated check digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckDigit {
    pub name: &'static str,
    pub passed: bool,
}

/// A parsed MRZ. Text fields have fillers removed; dates are `None` when not a valid calendar date.
#[derive(Clone, PartialEq)]
pub struct MrzRecord {
    pub format: MrzFormat,
    /// Corrected lines, exactly as the layout requires.
    pub lines: Vec<String>,
    pub document_code: String,
    pub issuing_country: String,
    /// Primary identifier (surname), spaces for single fillers.
    pub surname: String,
    /// Secondary identifier (given names).
    pub given_names: String,
    pub document_number: String,
    pub nationality: String,
    pub birth_date: Option<NaiveDate>,
    /// As printed: `M`, `F` or `X`; `None` for `<`.
    pub sex: Option<String>,
    pub expiry_date: Option<NaiveDate>,
    pub optional_data: String,
    pub optional_data_2: String,
    /// Every check digit the layout has, in a fixed order.
    pub check_digits: Vec<CheckDigit>,
    /// Character offsets (line, start, end) of the name in `lines`, for confidence estimation.
    pub name_span: (usize, usize, usize),
}

impl std::fmt::Debug for MrzRecord {
    // Personal data stays out of logs: only the layout and the check results are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MrzRecord")
            .field("format", &self.format)
            .field("document_code", &self.document_code)
            .field("check_digits", &self.check_digits)
            .finish_non_exhaustive()
    }
}

impl MrzRecord {
    pub fn all_check_digits_pass(&self) -> bool {
        self.check_digits.iter().all(|c| c.passed)
    }

    /// Given names then surname.
    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.given_names.as_str(), self.surname.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() { None } else { Some(parts.join(" ")) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzParseError {
    #[error("MRZ layout not recognised: {lines} lines of lengths {lengths:?}")]
    Layout { lines: usize, lengths: Vec<usize> },
    #[error("MRZ contains characters outside A-Z 0-9 <")]
    Charset,
}

/// ICAO 9303 check digit (weights 7, 3, 1; `<` = 0, A = 10 … Z = 35). `None` on an invalid character.
pub fn check_digit(data: &str) -> Option<u8> {
    let mut sum: u32 = 0;
    for (i, c) in data.chars().enumerate() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            '<' => 0,
            _ => return None,
        };
        sum += v * [7, 3, 1][i % 3];
    }
    Some((sum % 10) as u8)
}

/// Whether `check` is the right check digit for `data`. A `<` check character counts as 0, which
/// ICAO allows for empty optional data.
pub fn verify(data: &str, check: char) -> bool {
    let Some(expected) = check_digit(data) else { return false };
    match check {
        '0'..='9' => check as u8 - b'0' == expected,
        '<' => expected == 0,
        _ => false,
    }
}

/// What kind of character a position holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Digits (dates, check digits): letters that look like digits are turned into digits.
    Digit,
    /// Letters (codes, countries, names): digits that look like letters are turned into letters.
    Alpha,
    /// Sex: M, F, X or `<`.
    Sex,
    /// Document numbers, optional data: anything goes, no correction.
    Any,
}

fn to_digit(c: char) -> char {
    match c {
        'O' | 'Q' | 'D' | 'U' => '0',
        'I' | 'L' | 'J' => '1',
        'Z' => '2',
        'S' => '5',
        'B' => '8',
        'G' => '6',
        'T' => '7',
        'A' => '4',
        _ => c,
    }
}

fn to_alpha(c: char) -> char {
    match c {
        '0' => 'O',
        '1' => 'I',
        '2' => 'Z',
        '5' => 'S',
        '8' => 'B',
        '6' => 'G',
        '4' => 'A',
        '7' => 'T',
        _ => c,
    }
}

fn correct(c: char, slot: Slot) -> char {
    match slot {
        Slot::Digit => to_digit(c),
        Slot::Alpha => to_alpha(c),
        Slot::Sex => match c {
            'H' | 'N' => 'M',
            'E' | 'P' => 'F',
            'K' => 'X',
            _ => c,
        },
        Slot::Any => c,
    }
}

/// Slot layout of one line given as (start, end, slot) ranges.
fn apply(line: &str, ranges: &[(usize, usize, Slot)]) -> String {
    let mut out: Vec<char> = line.chars().collect();
    for &(start, end, slot) in ranges {
        for c in out.iter_mut().take(end).skip(start) {
            *c = correct(*c, slot);
        }
    }
    out.into_iter().collect()
}

fn clean(s: &str) -> String {
    s.trim_matches('<').replace('<', " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Field text without trailing fillers (inner fillers kept: some countries use them).
fn field(s: &str) -> String {
    s.trim_end_matches('<').to_string()
}

fn split_name(s: &str) -> (String, String) {
    let s = s.trim_end_matches('<');
    match s.find("<<") {
        Some(i) => (clean(&s[..i]), clean(&s[i + 2..])),
        None => (clean(s), String::new()),
    }
}

fn parse_yymmdd(s: &str) -> Option<(i32, u32, u32)> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = s[0..2].parse().ok()?;
    let mm: u32 = s[2..4].parse().ok()?;
    let dd: u32 = s[4..6].parse().ok()?;
    Some((yy, mm, dd))
}

/// Birth date: the latest century that puts the date not after `today`.
pub fn birth_date(yymmdd: &str, today: NaiveDate) -> Option<NaiveDate> {
    let (yy, mm, dd) = parse_yymmdd(yymmdd)?;
    let base = today.year() - today.year().rem_euclid(100);
    for century in [base, base - 100] {
        if let Some(d) = NaiveDate::from_ymd_opt(century + yy, mm, dd)
            && d <= today
        {
            return Some(d);
        }
    }
    None
}

/// Expiry date: the century that puts the date within 50 years either side of `today`.
pub fn expiry_date(yymmdd: &str, today: NaiveDate) -> Option<NaiveDate> {
    let (yy, mm, dd) = parse_yymmdd(yymmdd)?;
    let base = today.year() - today.year().rem_euclid(100);
    let lo = today.year() - 50;
    let hi = today.year() + 50;
    for century in [base, base + 100, base - 100] {
        let year = century + yy;
        if (lo..=hi).contains(&year) {
            return NaiveDate::from_ymd_opt(year, mm, dd);
        }
    }
    None
}

/// ICAO 9303 state and organisation codes (ISO 3166-1 alpha-3 plus the ICAO additions such as `D`,
/// `UTO`, `XXA`, `EUE`, `UNO`, `RKS`), sorted.
pub const ICAO_CODES: &[&str] = &[
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ANT", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF", "ATG",
    "AUS", "AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS", "BIH", "BLM", "BLR",
    "BLZ", "BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF", "CAN", "CCK", "CHE", "CHL", "CHN",
    "CIV", "CMR", "COD", "COG", "COK", "COL", "COM", "CPV", "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE",
    "D", "DEU", "DJI", "DMA", "DNK", "DOM", "DZA", "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "EUE",
    "FIN", "FJI", "FLK", "FRA", "FRO", "FSM", "GAB", "GBD", "GBN", "GBO", "GBP", "GBR", "GBS", "GEO", "GGY",
    "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD", "GRL", "GTM", "GUF", "GUM", "GUY", "HKG",
    "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN", "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA",
    "JAM", "JEY", "JOR", "JPN", "KAZ", "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR",
    "LBY", "LCA", "LIE", "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV",
    "MEX", "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS", "MWI",
    "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL", "NRU", "NTZ", "NZL",
    "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL", "PRI", "PRK", "PRT", "PRY", "PSE", "PYF",
    "QAT", "REU", "RKS", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP", "SGS", "SHN", "SJM", "SLB", "SLE",
    "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR", "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR",
    "TCA", "TCD", "TGO", "THA", "TJK", "TKL", "TKM", "TLS", "TON", "TTO", "TUN", "TUR", "TUV", "TWN", "TZA",
    "UGA", "UKR", "UMI", "UNA", "UNK", "UNO", "URY", "USA", "UTO", "UZB", "VAT", "VCT", "VEN", "VGB", "VIR",
    "VNM", "VUT", "WLF", "WSM", "XBA", "XCC", "XCE", "XCO", "XDC", "XEC", "XES", "XGB", "XGP", "XIM", "XIO",
    "XMA", "XMP", "XOM", "XPO", "XSC", "XXA", "XXB", "XXC", "XXX", "YEM", "YUG", "ZAF", "ZIM", "ZMB", "ZWE",
];

/// Whether `code` (fillers allowed, e.g. `D<<`) is a known ICAO code.
pub fn is_known_code(code: &str) -> bool {
    ICAO_CODES.binary_search(&code.trim_end_matches('<')).is_ok()
}

/// Letters that a recognizer confuses with each other (and digits read in a letter slot).
fn confusable(c: char) -> &'static [char] {
    match c {
        'O' | '0' | 'D' | 'Q' => &['O', 'D', 'Q'],
        'I' | '1' | 'L' => &['I', 'L'],
        'B' | '8' => &['B'],
        'S' | '5' => &['S'],
        'Z' | '2' => &['Z'],
        'G' | '6' => &['G'],
        'U' | 'V' => &['U', 'V'],
        'M' | 'N' => &['M', 'N'],
        _ => &[],
    }
}

/// Corrects a 3-character country field from the code list: when the read is not a known code and
/// exactly one single-character confusion turns it into one, that code is taken.
fn fix_country(field: &str) -> String {
    if is_known_code(field) || field.chars().count() != 3 {
        return field.to_string();
    }
    let chars: Vec<char> = field.chars().collect();
    let mut found: Vec<String> = Vec::new();
    for i in 0..3 {
        for &alt in confusable(chars[i]) {
            if alt == chars[i] {
                continue;
            }
            let mut candidate = chars.clone();
            candidate[i] = alt;
            let candidate: String = candidate.into_iter().collect();
            if is_known_code(&candidate) && !found.contains(&candidate) {
                found.push(candidate);
            }
        }
    }
    if found.len() == 1 { found.remove(0) } else { field.to_string() }
}

/// Replaces the country code at `start..start + 3` by its code-list correction.
fn fix_country_at(line: &mut String, start: usize) {
    if let Some(field) = line.get(start..start + 3) {
        let fixed = fix_country(field);
        if fixed.len() == 3 {
            line.replace_range(start..start + 3, &fixed);
        }
    }
}

/// Guess the layout from the number and length of lines and the document code.
pub fn detect_format(lines: &[&str]) -> Option<MrzFormat> {
    let first = lines.first()?;
    let visa = first.starts_with('V');
    match (lines.len(), lines.iter().map(|l| l.chars().count()).collect::<Vec<_>>().as_slice()) {
        (3, [30, 30, 30]) => Some(MrzFormat::Td1),
        (2, [36, 36]) if first.starts_with("IDFRA") => Some(MrzFormat::FraId),
        (2, [36, 36]) => Some(if visa { MrzFormat::MrvB } else { MrzFormat::Td2 }),
        (2, [44, 44]) => Some(if visa { MrzFormat::MrvA } else { MrzFormat::Td3 }),
        _ => None,
    }
}

/// Upper-cases, removes blanks. Keeps anything else so that the charset check can reject it.
pub fn normalize_line(line: &str) -> String {
    line.chars().filter(|c| !c.is_whitespace()).flat_map(|c| c.to_uppercase()).collect()
}

/// Parses 2 or 3 MRZ lines. `today` fixes the date centuries.
pub fn parse(lines: &[&str], today: NaiveDate) -> Result<MrzRecord, MrzParseError> {
    let norm: Vec<String> = lines.iter().map(|l| normalize_line(l)).collect();
    if norm.iter().any(|l| !l.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<')) {
        return Err(MrzParseError::Charset);
    }
    let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
    let format = detect_format(&refs).ok_or_else(|| MrzParseError::Layout {
        lines: refs.len(),
        lengths: refs.iter().map(|l| l.len()).collect(),
    })?;
    Ok(match format {
        MrzFormat::Td1 => parse_td1(&refs, today),
        MrzFormat::Td2 | MrzFormat::MrvB => parse_two_line(&refs, format, 36, today),
        MrzFormat::FraId => parse_fra_id(&refs, today),
        MrzFormat::Td3 | MrzFormat::MrvA => parse_two_line(&refs, format, 44, today),
    })
}

use Slot::{Alpha, Any, Digit, Sex};

/// Shared tail of the date/sex/nationality block in TD2/TD3/MRV line 2 (positions 10..28).
const LINE2_COMMON: [(usize, usize, Slot); 6] =
    [(9, 10, Digit), (10, 13, Alpha), (13, 20, Digit), (20, 21, Sex), (21, 28, Digit), (0, 0, Any)];

fn parse_two_line(lines: &[&str], format: MrzFormat, len: usize, today: NaiveDate) -> MrzRecord {
    let is_visa = matches!(format, MrzFormat::MrvA | MrzFormat::MrvB);
    let mut l1 = apply(lines[0], &[(0, 1, Alpha), (2, 5, Alpha), (5, len, Alpha)]);
    fix_country_at(&mut l1, 2);
    let mut ranges: Vec<(usize, usize, Slot)> = LINE2_COMMON.to_vec();
    if format == MrzFormat::Td3 {
        ranges.push((42, 44, Digit));
    } else if format == MrzFormat::Td2 {
        ranges.push((35, 36, Digit));
    }
    let mut l2 = apply(lines[1], &ranges);
    fix_country_at(&mut l2, 10);

    let mut number = l2[0..9].to_string();
    let mut number_check = l2.as_bytes()[9] as char;
    let mut number_data = number.clone();
    let optional_end = match format {
        MrzFormat::Td3 => 42,
        MrzFormat::Td2 => 35,
        _ => len,
    };
    let mut optional = l2[28..optional_end].to_string();
    // TD2 long document number: overflow into optional data, its check digit last.
    if format == MrzFormat::Td2 && number_check == '<' {
        let overflow = optional.trim_end_matches('<');
        if let Some(last) = overflow.chars().last() {
            let extra = &overflow[..overflow.len() - 1];
            number_data = format!("{number}{extra}");
            number = number_data.clone();
            number_check = last;
            optional = String::new();
        }
    }
    let mut checks = vec![
        CheckDigit { name: "document_number_check_digit", passed: verify(&number_data, number_check) },
        CheckDigit { name: "birth_date_check_digit", passed: verify(&l2[13..19], l2.as_bytes()[19] as char) },
        CheckDigit { name: "expiry_check_digit", passed: verify(&l2[21..27], l2.as_bytes()[27] as char) },
    ];
    if format == MrzFormat::Td3 {
        checks.push(CheckDigit {
            name: "optional_data_check_digit",
            passed: verify(&l2[28..42], l2.as_bytes()[42] as char),
        });
    }
    if !is_visa {
        let composite_data = format!("{}{}{}", &l2[0..10], &l2[13..20], &l2[21..len - 1]);
        checks.push(CheckDigit {
            name: "composite_check_digit",
            passed: verify(&composite_data, l2.as_bytes()[len - 1] as char),
        });
    }
    let (surname, given_names) = split_name(&l1[5..]);
    MrzRecord {
        format,
        document_code: field(&l1[0..2]),
        issuing_country: field(&l1[2..5]),
        surname,
        given_names,
        document_number: field(&number).replace('<', ""),
        nationality: field(&l2[10..13]),
        birth_date: birth_date(&l2[13..19], today),
        sex: sex(&l2[20..21]),
        expiry_date: expiry_date(&l2[21..27], today),
        optional_data: field(&optional),
        optional_data_2: String::new(),
        check_digits: checks,
        name_span: (0, 5, len),
        lines: vec![l1, l2],
    }
}

fn parse_fra_id(lines: &[&str], today: NaiveDate) -> MrzRecord {
    let l1 = apply(lines[0], &[(0, 5, Alpha), (5, 30, Alpha)]);
    let l2 = apply(
        lines[1],
        &[(0, 4, Digit), (12, 13, Digit), (13, 27, Alpha), (27, 34, Digit), (34, 35, Sex), (35, 36, Digit)],
    );
    let check = |data: &str, at: usize| verify(data, l2.as_bytes()[at] as char);
    let checks = vec![
        CheckDigit { name: "document_number_check_digit", passed: check(&l2[0..12], 12) },
        CheckDigit { name: "birth_date_check_digit", passed: check(&l2[27..33], 33) },
        CheckDigit { name: "composite_check_digit", passed: check(&format!("{l1}{}", &l2[..35]), 35) },
    ];
    // Given names are separated by two fillers, their parts by one.
    let given = l2[13..27].trim_end_matches('<').split("<<").map(|n| n.replace('<', " ")).collect::<Vec<_>>();
    MrzRecord {
        format: MrzFormat::FraId,
        document_code: field(&l1[0..2]),
        issuing_country: field(&l1[2..5]),
        surname: field(&l1[5..30]).replace('<', " "),
        given_names: given.join(" ").trim().to_string(),
        document_number: field(&l2[0..12]).replace('<', ""),
        nationality: "FRA".to_string(),
        birth_date: birth_date(&l2[27..33], today),
        sex: sex(&l2[34..35]),
        expiry_date: None,
        optional_data: field(&l1[30..36]),
        optional_data_2: String::new(),
        check_digits: checks,
        name_span: (0, 5, 30),
        lines: vec![l1, l2],
    }
}

fn sex(s: &str) -> Option<String> {
    match s {
        "M" | "F" | "X" => Some(s.to_string()),
        _ => None,
    }
}

fn parse_td1(lines: &[&str], today: NaiveDate) -> MrzRecord {
    let mut l1 = apply(lines[0], &[(0, 1, Alpha), (2, 5, Alpha), (14, 15, Digit)]);
    fix_country_at(&mut l1, 2);
    let mut l2 =
        apply(lines[1], &[(0, 7, Digit), (7, 8, Sex), (8, 15, Digit), (15, 18, Alpha), (29, 30, Digit)]);
    fix_country_at(&mut l2, 15);
    let l3 = apply(lines[2], &[(0, 30, Alpha)]);

    let mut number = l1[5..14].to_string();
    let mut number_data = number.clone();
    let mut number_check = l1.as_bytes()[14] as char;
    let mut optional = l1[15..30].to_string();
    // Long document number: continues in the optional data, its check digit last.
    if number_check == '<' {
        let overflow = optional.trim_end_matches('<');
        if let Some(last) = overflow.chars().last() {
            let extra = &overflow[..overflow.len() - 1];
            number_data = format!("{number}{extra}");
            number = number_data.clone();
            number_check = last;
            optional = String::new();
        }
    }
    let composite_data = format!("{}{}{}{}", &l1[5..30], &l2[0..7], &l2[8..15], &l2[18..29]);
    let checks = vec![
        CheckDigit { name: "document_number_check_digit", passed: verify(&number_data, number_check) },
        CheckDigit { name: "birth_date_check_digit", passed: verify(&l2[0..6], l2.as_bytes()[6] as char) },
        CheckDigit { name: "expiry_check_digit", passed: verify(&l2[8..14], l2.as_bytes()[14] as char) },
        CheckDigit {
            name: "composite_check_digit",
            passed: verify(&composite_data, l2.as_bytes()[29] as char),
        },
    ];
    let (surname, given_names) = split_name(&l3);
    MrzRecord {
        format: MrzFormat::Td1,
        document_code: field(&l1[0..2]),
        issuing_country: field(&l1[2..5]),
        surname,
        given_names,
        document_number: number.replace('<', ""),
        nationality: field(&l2[15..18]),
        birth_date: birth_date(&l2[0..6], today),
        sex: sex(&l2[7..8]),
        expiry_date: expiry_date(&l2[8..14], today),
        optional_data: field(&optional),
        optional_data_2: field(&l2[18..29]),
        check_digits: checks,
        name_span: (2, 0, 30),
        lines: vec![l1, l2, l3],
    }
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

    #[test]
    fn check_digits_match_icao_examples() {
        assert_eq!(check_digit("L898902C3"), Some(6));
        assert_eq!(check_digit("740812"), Some(2));
        assert_eq!(check_digit("120415"), Some(9));
        assert_eq!(check_digit("ZE184226B<<<<<"), Some(1));
        assert_eq!(check_digit("<<<<<<<<<<<<<<"), Some(0));
        assert_eq!(check_digit("D23145890"), Some(7));
        assert_eq!(check_digit("AB2134<<<"), Some(5));
        assert_eq!(check_digit("a"), None);
        assert!(verify("<<<<", '<'));
        assert!(!verify("740812", '3'));
        assert!(!verify("740812", 'X'));
    }

    #[test]
    fn td3_icao_specimen() {
        let r = parse(
            &["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"],
            today(),
        )
        .unwrap();
        assert_eq!(r.format, MrzFormat::Td3);
        assert_eq!(r.document_code, "P");
        assert_eq!(r.issuing_country, "UTO");
        assert_eq!(r.surname, "ERIKSSON");
        assert_eq!(r.given_names, "ANNA MARIA");
        assert_eq!(r.full_name().as_deref(), Some("ANNA MARIA ERIKSSON"));
        assert_eq!(r.document_number, "L898902C3");
        assert_eq!(r.nationality, "UTO");
        assert_eq!(r.birth_date, d(1974, 8, 12));
        assert_eq!(r.sex.as_deref(), Some("F"));
        assert_eq!(r.expiry_date, d(2012, 4, 15));
        assert_eq!(r.optional_data, "ZE184226B");
        let names: Vec<_> = r.check_digits.iter().map(|c| (c.name, c.passed)).collect();
        assert_eq!(
            names,
            vec![
                ("document_number_check_digit", true),
                ("birth_date_check_digit", true),
                ("expiry_check_digit", true),
                ("optional_data_check_digit", true),
                ("composite_check_digit", true),
            ]
        );
    }

    #[test]
    fn td3_corrects_by_layout_and_fails_wrong_digit() {
        // O for 0 in a date and 5 for S in the name are corrected; the number check fails on a real error.
        let r = parse(
            &["P<UTOERIK55ON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO74O8122F1204159ZE184226B<<<<<10"],
            today(),
        )
        .unwrap();
        assert_eq!(r.surname, "ERIKSSON");
        assert_eq!(r.birth_date, d(1974, 8, 12));
        assert!(r.all_check_digits_pass());
        let bad = parse(
            &["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C46UTO7408122F1204159ZE184226B<<<<<10"],
            today(),
        )
        .unwrap();
        assert!(!bad.check_digits[0].passed);
        assert!(!bad.all_check_digits_pass());
    }

    #[test]
    fn td3_multi_word_surname_and_d_nationality() {
        let r = parse(
            &["P<QATAL<KAABI<<ALI<HAMAD<ABDULLAH<<<<<<<<<<<", "00000000<0QAT7103070M110725012345458902<<<78"],
            today(),
        )
        .unwrap();
        assert_eq!(r.surname, "AL KAABI");
        assert_eq!(r.given_names, "ALI HAMAD ABDULLAH");
        assert_eq!(r.sex.as_deref(), Some("M"));
        assert!(r.all_check_digits_pass());
        let r = parse(
            &["P<BDRMUSTERMANN<<ERIKA<<<<<<<<<<<<<<<<<<<<<<", "CA000000<4D<<6408125F1802212<<<<<<<<<<<<<<<6"],
            today(),
        )
        .unwrap();
        assert_eq!(r.nationality, "D");
        assert_eq!(r.birth_date, d(1964, 8, 12));
        assert_eq!(r.expiry_date, d(2018, 2, 21));
        assert!(r.all_check_digits_pass());
    }

    #[test]
    fn td2_specimen() {
        let r =
            parse(&["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"], today())
                .unwrap();
        assert_eq!(r.format, MrzFormat::Td2);
        assert_eq!(r.document_number, "D23145890");
        assert_eq!(r.birth_date, d(1974, 8, 12));
        assert_eq!(r.expiry_date, d(2012, 4, 15));
        assert_eq!(r.check_digits.len(), 4);
        assert!(r.all_check_digits_pass());
    }

    #[test]
    fn td1_specimens() {
        let r = parse(
            &[
                "I<UTOD231458907<<<<<<<<<<<<<<<",
                "7408122F1204159UTO<<<<<<<<<<<6",
                "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
            ],
            today(),
        )
        .unwrap();
        assert_eq!(r.format, MrzFormat::Td1);
        assert_eq!(r.document_number, "D23145890");
        assert_eq!(r.surname, "ERIKSSON");
        assert_eq!(r.given_names, "ANNA MARIA");
        assert_eq!(r.nationality, "UTO");
        assert_eq!(r.birth_date, d(1974, 8, 12));
        assert_eq!(r.expiry_date, d(2012, 4, 15));
        assert!(r.all_check_digits_pass());
        // Mock card whose printed composite digit is wrong on purpose.
        let r = parse(
            &[
                "IDCMW<512849702<<<<<<<<<<<<<<<",
                "6104128M1402209CMW<<<<<<<<<<<1",
                "PUBLIC<<JON<<<<<<<<<<<<<<<<<<<",
            ],
            today(),
        )
        .unwrap();
        assert_eq!(r.document_code, "ID");
        let failed: Vec<_> = r.check_digits.iter().filter(|c| !c.passed).map(|c| c.name).collect();
        assert_eq!(failed, vec!["composite_check_digit"]);
    }

    #[test]
    fn td1_long_document_number() {
        // ICAO 9303 part 5 example of a document number longer than 9 characters.
        let r = parse(
            &[
                "I<UTOD23145890<7349<<<<<<<<<<<",
                "3407127M9507122UTO<<<<<<<<<<<2",
                "STEVENSON<<PETER<JOHN<<<<<<<<<",
            ],
            today(),
        )
        .unwrap();
        assert_eq!(r.document_number, "D23145890734");
        assert!(r.check_digits[0].passed);
        assert!(r.all_check_digits_pass());
    }

    #[test]
    fn visas() {
        let r = parse(
            &["V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L8988901C4XXX4009078F96121096ZE184226B<<<<<<"],
            today(),
        )
        .unwrap();
        assert_eq!(r.format, MrzFormat::MrvA);
        assert_eq!(r.nationality, "XXX");
        assert_eq!(r.check_digits.len(), 3);
        assert!(r.all_check_digits_pass());
        assert_eq!(r.expiry_date, d(1996, 12, 10));
        let r =
            parse(&["V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "L8988901C4XXX4009078F9612109<<<<<<<<"], today())
                .unwrap();
        assert_eq!(r.format, MrzFormat::MrvB);
        assert!(r.all_check_digits_pass());
    }

    #[test]
    fn country_codes_from_the_code_list() {
        assert!(is_known_code("D<<"));
        assert!(is_known_code("UTO"));
        assert!(!is_known_code("O<<"));
        assert_eq!(fix_country("0<<"), "D<<");
        assert_eq!(fix_country("UT0"), "UTO");
        // Unknown but no single confusion leads to a code: kept as printed.
        assert_eq!(fix_country("BDR"), "BDR");
        let r = parse(
            &[
                "IDD<<T220001293<<<<<<<<<<<<<<<",
                "6408125<2010315O<<<<<<<<<<<<<4",
                "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
            ],
            today(),
        )
        .unwrap();
        assert_eq!(r.nationality, "D");
        assert_eq!(r.lines[1], "6408125<2010315D<<<<<<<<<<<<<4");
    }

    #[test]
    fn century_rules() {
        let t = today();
        assert_eq!(birth_date("740812", t), d(1974, 8, 12));
        assert_eq!(birth_date("260101", t), d(2026, 1, 1));
        // Later this year than today: must be last century.
        assert_eq!(birth_date("261231", t), d(1926, 12, 31));
        assert_eq!(birth_date("051231", t), d(2005, 12, 31));
        assert_eq!(expiry_date("120415", t), d(2012, 4, 15));
        assert_eq!(expiry_date("350101", t), d(2035, 1, 1));
        assert_eq!(expiry_date("761231", t), d(2076, 12, 31));
        assert_eq!(expiry_date("770101", t), d(1977, 1, 1));
        assert_eq!(expiry_date("991231", t), d(1999, 12, 31));
        assert_eq!(expiry_date("991331", t), None);
        assert_eq!(birth_date("<<<<<<", t), None);
    }

    #[test]
    fn rejects_bad_layouts() {
        assert!(matches!(parse(&["P<UTO"], today()), Err(MrzParseError::Layout { .. })));
        assert_eq!(parse(&["P<UTO€"], today()), Err(MrzParseError::Charset));
        assert!(parse(&[], today()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(lines in proptest::collection::vec("[A-Z0-9<]{0,46}|.{0,50}", 0..4)) {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let _ = parse(&refs, today());
        }

        #[test]
        fn parse_never_panics_on_valid_shapes(
            a in "[A-Z0-9<]{44}", b in "[A-Z0-9<]{44}", c in "[A-Z0-9<]{36}", e in "[A-Z0-9<]{36}",
            f in "[A-Z0-9<]{30}", g in "[A-Z0-9<]{30}", h in "[A-Z0-9<]{30}",
        ) {
            let _ = parse(&[&a, &b], today());
            let _ = parse(&[&c, &e], today());
            let _ = parse(&[&f, &g, &h], today());
        }
    }

    #[test]
    fn the_french_id_card_layout_is_not_read_as_td2() {
        // France's 1994 specimen (BERTHIER Corinne): all three check digits verify.
        let lines = ["IDFRABERTHIER<<<<<<<<<<<<<<<<<<<<<<<", "9409923102854CORINNE<<<<<<<6512068F4"];
        let r = parse(&lines, today()).unwrap();
        assert_eq!(r.format, MrzFormat::FraId);
        assert_eq!(r.format.source_name(), "mrz_fra_id");
        assert!(r.all_check_digits_pass(), "{:?}", r.check_digits);
        assert_eq!((r.surname.as_str(), r.given_names.as_str()), ("BERTHIER", "CORINNE"));
        assert_eq!(r.document_number, "940992310285");
        assert_eq!(r.birth_date, NaiveDate::from_ymd_opt(1965, 12, 6));
        assert_eq!((r.sex.as_deref(), r.nationality.as_str(), r.expiry_date), (Some("F"), "FRA", None));
        // One digit of the number misread: its check digit and the overall one fail.
        let misread = lines[1].replacen("940992", "940993", 1);
        let r = parse(&[lines[0], misread.as_str()], today()).unwrap();
        let failed: Vec<&str> = r.check_digits.iter().filter(|c| !c.passed).map(|c| c.name).collect();
        assert_eq!(failed, vec!["document_number_check_digit", "composite_check_digit"]);
        // Two given names, and a TD2 card of another state stays TD2.
        let two = "IDFRABERTHIER<<<<<<<<<<<<<<<<<<<<<<<";
        let r = parse(&[two, "9409923102854CORINNE<<MARIE6512068F4"], today()).unwrap();
        assert_eq!(r.given_names, "CORINNE MARIE");
        assert_eq!(
            detect_format(&["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"]),
            Some(MrzFormat::Td2)
        );
    }
}
