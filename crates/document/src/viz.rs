//! The visual zone of a card front: the printed fields of a US (AAMVA) or EU driving licence, or of
//! an ID card, from the text lines that OCR read on it.
//!
//! Pure text and geometry; no model. The input is every line the recognizer read, with its box
//! on the page and its mean character probability. The parser:
//!
//! 1. folds each line (upper case, accents removed, one character for one) and cuts it into
//!    segments at field markers: a field number (`4a.`, `4b`, `15` before a label), or a label
//!    (`DOB`, `Date of birth`, `Nom / Surname`, `Geburtsdatum`, …; English, French, German,
//!    Spanish and Italian);
//! 2. decides the layout from the titles, the jurisdiction and the date style (AAMVA numbers its
//!    licence number 4d, the EU numbers it 5), and maps numbers and labels to fields;
//! 3. takes a marker with no value on its own line from the nearest line below it (bilingual ID
//!    cards print the label above the value), and an address over up to three lines;
//! 4. reads dates by the region's convention: MM/DD/YYYY in the US, DD.MM.YY(YY) or DD/MM/YYYY in
//!    Europe; a two-digit year of birth goes to the latest century not after today;
//! 5. finds the jurisdiction: the US state named in the header; the EU state from the
//!    distinguishing sign in the flag (`F`, `D`, `NL`, …), the header, or the licence MRZ line.
//!
//! [`cross_check_mrz`] compares a visual zone with an ICAO MRZ read from the same document.

use chrono::{Datelike, NaiveDate};

use crate::aamva::is_canadian_jurisdiction;
use crate::eu_dl_mrz::{self, EuDlMrz};
use crate::field_confidence::{DocumentField, FieldConfidence};
use crate::{Check, DocumentFields, mrz};
use tables::{
    AAMVA_NUMBER_SHAPES, CA_PROVINCES, EU_SIGNS, EU_TITLES, ID_TITLES, LABELS, NATIONALITY_WORDS, NUMBERS,
    SHORT_LABELS, STATE_HEADERS, US_STATES, US_TITLES,
};

mod tables;

/// One line of text read on the page. Box coordinates are fractions of the page (0 to 1).
#[derive(Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    /// Mean recognizer probability of its characters, 0 to 1.
    pub confidence: f32,
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VizLayout {
    /// AAMVA DL/ID Card Design Standard (US and Canada).
    Aamva,
    /// Directive 2006/126/EC licence.
    EuDrivingLicence,
    /// An ID card's labelled fields.
    IdCard,
}

impl VizLayout {
    /// `document.source` on the wire.
    pub fn source_name(self) -> &'static str {
        match self {
            VizLayout::Aamva => "viz_aamva",
            VizLayout::EuDrivingLicence => "viz_eu_dl",
            VizLayout::IdCard => "viz_id_card",
        }
    }
}

/// What the visual zone says.
#[derive(Clone)]
pub struct VizRead {
    pub layout: VizLayout,
    /// A US state or Canadian province's postal code (`CA`), or the issuing state's alpha-3 code.
    pub jurisdiction: Option<String>,
    /// The card says it is an identification card rather than a licence (AAMVA covers both).
    pub identification_card: bool,
    pub fields: DocumentFields,
    /// 0 to 100: the mean recognizer probability of the line each field was read from.
    pub field_confidence: FieldConfidence,
    /// Licence categories (field 9).
    pub categories: Option<String>,
    /// The EU licence MRZ line, when one was read.
    pub eu_mrz: Option<EuDlMrz>,
}

// Personal data stays out of logs: what was read is not shown, only where and how well.
impl std::fmt::Debug for TextLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextLine")
            .field("chars", &self.text.chars().count())
            .field("confidence", &self.confidence)
            .field("box", &(self.left, self.top, self.right, self.bottom))
            .finish()
    }
}

impl std::fmt::Debug for VizRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VizRead")
            .field("layout", &self.layout)
            .field("jurisdiction", &self.jurisdiction)
            .field("fields_read", &self.field_confidence.len())
            .field("eu_mrz", &self.eu_mrz)
            .finish_non_exhaustive()
    }
}

/// A field the parser knows, before it is mapped to [`DocumentFields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Surname,
    GivenNames,
    BirthDate,
    IssueDate,
    ExpiryDate,
    Authority,
    Number,
    Discriminator,
    Address,
    Categories,
    Restrictions,
    Sex,
    Height,
    Eyes,
    Nationality,
    /// A number whose meaning depends on the layout (4d, 5).
    Numbered(&'static str),
}

/// Upper case, accents removed, apostrophes and dots kept; one character for one, so positions in
/// the folded text are positions in the original.
pub fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    let base = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'ç' | 'Ç' | 'č' | 'Č' | 'ć' | 'Ć' => 'C',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' | 'ě' | 'Ě' | 'ę' | 'Ę' => 'E',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ñ' | 'Ñ' | 'ń' | 'Ń' | 'ň' | 'Ň' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
        'ù' | 'ú' | 'û' | 'ü' | 'ů' | 'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ů' => 'U',
        'ý' | 'ÿ' | 'Ý' => 'Y',
        'š' | 'Š' | 'ś' | 'Ś' | 'ß' => 'S',
        'ž' | 'Ž' | 'ź' | 'Ź' | 'ż' | 'Ż' => 'Z',
        'ł' | 'Ł' => 'L',
        'ř' | 'Ř' => 'R',
        '’' | '‘' | '`' | '´' => '\'',
        _ => c,
    };
    base.to_uppercase().next().unwrap_or(base)
}

/// A word of a folded line: its text for matching (punctuation stripped) and its char span.
#[derive(Clone, Debug)]
struct Word {
    bare: String,
    start: usize,
    end: usize,
    /// Ends with `.` or `:` (a field number printed as `4a.`).
    dotted: bool,
}

fn words(folded: &str) -> Vec<Word> {
    let chars: Vec<char> = folded.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        // Apostrophes, slashes and degree signs separate words too: `D'EXPIR.`, `NOM/SURNAME`,
        // `N°DU DOCUMENT`.
        let is_sep = |c: char| c.is_whitespace() || matches!(c, '\'' | '/' | '°' | 'º');
        if is_sep(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !is_sep(chars[i]) {
            i += 1;
        }
        let raw: String = chars[start..i].iter().collect();
        let dotted = raw.ends_with('.') || raw.ends_with(':');
        // `PRENOM(S)`, `NE(E)`: the plural and feminine marks are not part of the label.
        let bare = raw.replace("(S)", "").replace("(E)", "");
        let bare = bare
            .trim_matches(|c: char| matches!(c, '.' | ':' | ',' | '(' | ')' | '°' | 'º' | '#'))
            .to_string();
        // OCR reads O as 0 in short labels (`D0B`); numbers and values are taken from the original.
        let bare = if bare.chars().count() <= 4 && bare.chars().any(|c| c.is_ascii_alphabetic()) {
            bare.replace('0', "O")
        } else {
            bare
        };
        out.push(Word { bare, start, end: i, dotted });
    }
    out
}

/// A segment of a line: a marker's field and the text after it (in the original), or free text.
#[derive(Clone, Debug)]
struct Segment {
    key: Option<Key>,
    value: String,
    /// The marker was a field number (`4a.`, `15`), not only a label.
    numbered: bool,
    /// Where the marker starts along the line, 0 to 1 (by characters): a label of a second
    /// column that OCR read on one line with the first has its value below it, not below the line.
    at: f32,
}

/// The longest label starting at word `i`: (key, number of words).
fn label_at(ws: &[Word], i: usize) -> Option<(Key, usize)> {
    let mut best: Option<(Key, usize)> = None;
    for (label, key) in LABELS {
        let parts: Vec<&str> = label.split(' ').collect();
        if i + parts.len() > ws.len() {
            continue;
        }
        // `N°` and `NO` fold to `N`/`NO`; `D'EXPIR.` is split at the apostrophe.
        let matches = parts.iter().enumerate().all(|(k, p)| ws[i + k].bare == *p);
        if matches && best.is_none_or(|(_, n)| parts.len() > n) {
            best = Some((*key, parts.len()));
        }
    }
    best
}

fn number_at(ws: &[Word], i: usize) -> Option<Key> {
    NUMBERS.iter().find(|(n, _)| ws[i].bare == *n).map(|(_, k)| *k)
}

/// Cuts a line into segments at field numbers and labels (see the module documentation).
fn segments(text: &str) -> Vec<Segment> {
    // An MRZ line (`1DD<<T220001293<<<…`) holds no printed field, whatever it starts with.
    if is_mrz_like(text) {
        return vec![Segment { key: None, value: text.trim().to_string(), numbered: false, at: 0.0 }];
    }
    let text = &split_glued_number(text);
    let folded = fold(text);
    let ws = words(&folded);
    let original: Vec<char> = text.chars().collect();
    // Markers: (first word, first word of the value, key, a field number).
    let mut markers: Vec<(usize, usize, Key, bool)> = Vec::new();
    let mut i = 0;
    while i < ws.len() {
        let at_start = i == 0;
        // A line starting `12 07 1990` is a date, not field 12.
        let starts_date = || {
            let from: Vec<char> = folded.chars().skip(ws[i].start).collect();
            date_at(&from, DateOrder::DayFirst).is_some() || date_at(&from, DateOrder::MonthFirst).is_some()
        };
        if let Some(num_key) = number_at(&ws, i)
            && !starts_date()
        {
            let next_label = label_at(&ws, i + 1).filter(|_| i + 1 < ws.len());
            if at_start || ws[i].dotted || next_label.is_some() {
                let mut key = num_key;
                let mut next = i + 1;
                if let Some((label_key, n)) = next_label {
                    // `4d DLN`: the label says what the number means.
                    if matches!(num_key, Key::Numbered(_)) {
                        key = label_key;
                    }
                    next += n;
                }
                markers.push((i, skip_chained_labels(&ws, &folded, next), key, true));
                i = next;
                continue;
            }
        }
        if let Some((key, n)) = label_at(&ws, i) {
            let short = n == 1 && SHORT_LABELS.contains(&ws[i].bare.as_str());
            let after_slash = i > 0 && folded.chars().nth(ws[i].start - 1) == Some('/');
            // A long label mid-line starts a second column that OCR read as one line with the first.
            let long = n >= 2 || ws[i].bare.chars().count() >= 6;
            let mid_line_ok =
                short || long || after_slash || ws[i].dotted || ws.get(i + n - 1).is_some_and(|w| w.dotted);
            if (at_start || mid_line_ok) && !ends_street(&ws, i, n) {
                let next = skip_chained_labels(&ws, &folded, i + n);
                markers.push((i, next, key, false));
                i = next;
                continue;
            }
        }
        i += 1;
    }
    let text_of = |from: usize, to: usize| -> String {
        let start = ws.get(from).map_or(original.len(), |w| w.start);
        let end = if to == 0 { start } else { ws.get(to - 1).map_or(start, |w| w.end) };
        if end <= start {
            return String::new();
        }
        original[start..end]
            .iter()
            .collect::<String>()
            .trim_matches(|c: char| matches!(c, ':' | '/' | '#') || c.is_whitespace())
            .to_string()
    };
    let mut out = Vec::new();
    let first = markers.first().map_or(ws.len(), |m| m.0);
    if first > 0 {
        out.push(Segment { key: None, value: text_of(0, first), numbered: false, at: 0.0 });
    }
    let chars = original.len().max(1) as f32;
    for (k, &(marker, value_start, key, numbered)) in markers.iter().enumerate() {
        let end = markers.get(k + 1).map_or(ws.len(), |m| m.0);
        let at = ws[marker].start as f32 / chars;
        out.push(Segment { key: Some(key), value: text_of(value_start, end.max(value_start)), numbered, at });
    }
    out
}

/// The label at word `i` (`n` words) ends the line right after a house number and street words
/// (`8123 STREET ADDRESS`, a placeholder street): a word of the street, not a second column's label.
fn ends_street(ws: &[Word], i: usize, n: usize) -> bool {
    let is_house = |w: &Word| (1..=6).contains(&w.bare.len()) && w.bare.chars().all(|c| c.is_ascii_digit());
    let is_word = |w: &Word| !w.dotted && w.bare.chars().all(char::is_alphabetic) && !w.bare.is_empty();
    i + n == ws.len()
        && !ws[i..].iter().any(|w| w.dotted)
        && ws[..i].iter().rposition(is_house).is_some_and(|h| h + 1 < i && ws[h + 1..i].iter().all(is_word))
}

/// A line of a machine-readable zone: fillers in it.
fn is_mrz_like(text: &str) -> bool {
    text.contains("<<")
}

/// OCR often drops the space after a field number: `3.11.09.1981 MADRID`, `5.51CF18499`,
/// `4a.27.01.2025 4b.27.01.2033`. A word that starts with a field number and a dot glued to more
/// text gets the space back, unless the word is a date (`12.09.2013`).
fn split_glued_number(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let mut rest = text;
    while !rest.is_empty() {
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_len);
        out.push_str(&unglue(word));
        let space_len = tail.find(|c: char| !c.is_whitespace()).unwrap_or(tail.len());
        out.push_str(&tail[..space_len]);
        rest = &tail[space_len..];
    }
    out
}

fn unglue(word: &str) -> String {
    // `DD:1264…`, `EYES:BRO`: a colon glued to its value.
    if let Some((head, tail)) = word.split_once(':')
        && head.chars().any(|c| c.is_alphabetic())
        && !tail.is_empty()
    {
        return format!("{}: {}", unglue(head), unglue(tail));
    }
    let chars: Vec<char> = word.chars().collect();
    // `DLN6840236`, `DOB1961/02/22`: a label of three letters or more glued to its value.
    if chars.first().is_some_and(|c| !c.is_ascii_digit())
        && let Some(label_len) = short_label_prefix(word).filter(|&n| n >= 3)
        && chars.get(label_len).is_some_and(|c| c.is_ascii_digit())
    {
        let (label, value): (String, String) =
            (chars[..label_len].iter().collect(), chars[label_len..].iter().collect());
        return format!("{label} {value}");
    }
    let Some(number_len) = field_number_prefix(&chars) else { return word.to_string() };
    let rest: String = chars[number_len..].iter().collect();
    let head: String = chars[..number_len].iter().collect();
    // `3.11.09.1981`, `5.51CF18499`, `4a.01.01.2013`: a dot, then the value.
    if let Some(value) = rest.strip_prefix('.')
        && !value.is_empty()
        && date_at(&chars, DateOrder::DayFirst).is_none()
    {
        return format!("{head}. {value}");
    }
    // `4b31.12.2013`: a lettered number runs straight into its value.
    if head.chars().last().is_some_and(|c| c.is_ascii_alphabetic())
        && rest.starts_with(|c: char| c.is_ascii_digit())
    {
        return format!("{head} {rest}");
    }
    // `15SEX`, `4bEXP`, `4dLIC#WDL…`, `5DDWDL…`: a number glued to its label (and the label to
    // its value).
    if let Some(label_len) = short_label_prefix(&rest) {
        let (label, value) = rest.split_at(label_len);
        // The label keeps its colon or dot; `#` (`LIC#`) is dropped.
        let punct_len = value.chars().take_while(|c| matches!(c, '#' | ':' | '.')).count();
        let label = format!("{label}{}", value[..punct_len].replace('#', ""));
        let value = &value[punct_len..];
        return if value.is_empty() { format!("{head} {label}") } else { format!("{head} {label} {value}") };
    }
    // `1ANDERSON`: a name's number glued to the name (three letters or more, so `1ST` stays).
    if matches!(head.as_str(), "1" | "2")
        && rest.chars().count() >= 3
        && rest.chars().all(char::is_alphabetic)
    {
        return format!("{head} {rest}");
    }
    word.to_string()
}

/// The length of a field number at the start of `chars` (`15`, `4b`, `3`), longest first.
fn field_number_prefix(chars: &[char]) -> Option<usize> {
    (1..=2.min(chars.len())).rev().find(|&n| {
        let head: String = chars[..n].iter().collect();
        chars[0].is_ascii_digit() && NUMBERS.iter().any(|(number, _)| fold(&head) == *number)
    })
}

/// The length of a short label at the start of `text` (folded, `0` read as `O`), longest first.
fn short_label_prefix(text: &str) -> Option<usize> {
    let folded = fold(text).replace('0', "O");
    SHORT_LABELS
        .iter()
        .filter(|label| folded.starts_with(**label))
        .map(|label| label.len())
        .max()
        .filter(|&n| n < folded.len() || n == folded.len())
}

/// Skips the second language of a bilingual label (`NOM / SURNAME`, `DATE DE NAISS. / DATE OF BIRTH`):
/// a label right after a slash. (Without the slash it is the next column's label.)
fn skip_chained_labels(ws: &[Word], folded: &str, mut i: usize) -> usize {
    let chars: Vec<char> = folded.chars().collect();
    let after_slash = |i: usize| {
        ws.get(i).is_some_and(|w| chars[..w.start].iter().rev().find(|c| !c.is_whitespace()) == Some(&'/'))
    };
    while after_slash(i)
        && let Some((_, n)) = label_at(ws, i)
    {
        i += n;
    }
    i
}

/// Parses the visual zone from the lines OCR read on the page. `None` when the page does not look
/// like a card front of a known layout. `requested` narrows the layout when the titles are silent.
pub fn parse(lines: &[TextLine], requested: crate::RequestedType, today: NaiveDate) -> Option<VizRead> {
    parse_as(lines, requested, None, today)
}

/// The labelled fields of any page (a passport's data page, say), read as an ID card's: for
/// [`cross_check_mrz`].
pub fn labelled_fields(lines: &[TextLine], today: NaiveDate) -> DocumentFields {
    parse_as(lines, crate::RequestedType::Auto, Some(VizLayout::IdCard), today)
        .map(|r| r.fields)
        .unwrap_or_default()
}

fn parse_as(
    lines: &[TextLine],
    requested: crate::RequestedType,
    layout: Option<VizLayout>,
    today: NaiveDate,
) -> Option<VizRead> {
    let folded: Vec<String> = lines.iter().map(|l| fold(&l.text)).collect();
    let all = format!(
        " {} ",
        folded
            .iter()
            .map(|l| words(l).into_iter().map(|w| w.bare).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let has = |phrase: &str| all.contains(&format!(" {phrase} "));
    let eu_mrz = lines.iter().find_map(|l| eu_dl_mrz::parse(&l.text, today).ok());
    let state = us_state(lines, &folded);
    let us_title = US_TITLES.iter().any(|t| has(t));
    let eu_title = EU_TITLES.iter().any(|t| has(t));
    let id_title = ID_TITLES.iter().any(|t| has(t));
    let segs: Vec<Vec<Segment>> = lines.iter().map(|l| segments(&l.text)).collect();
    // Two numbered fields at least: one number at a line's start may be anything.
    let numbered = segs.iter().flatten().filter(|s| s.numbered).count() >= 2;
    let us_dates =
        lines.iter().any(|l| l.text.contains('/') && find_date(&l.text, DateOrder::MonthFirst).is_some());
    let layout = if let Some(layout) = layout {
        layout
    } else if (state.is_some() && (us_title || numbered)) || (us_title && !eu_title && !id_title) {
        VizLayout::Aamva
    } else if eu_title || eu_mrz.is_some() {
        VizLayout::EuDrivingLicence
    } else if id_title {
        VizLayout::IdCard
    } else {
        match requested {
            crate::RequestedType::DriversLicense if numbered && us_dates => VizLayout::Aamva,
            crate::RequestedType::DriversLicense if numbered => VizLayout::EuDrivingLicence,
            crate::RequestedType::NationalId if segs.iter().flatten().any(|s| s.key.is_some()) => {
                VizLayout::IdCard
            }
            _ => return None,
        }
    };
    let order = if layout == VizLayout::Aamva { DateOrder::MonthFirst } else { DateOrder::DayFirst };

    // Every marker's value: its own text, else the nearest free line below it.
    let mut values: Vec<(Key, String, f32)> = Vec::new();
    let mut given_line: Option<usize> = None;
    let mut used_below = vec![false; lines.len()];
    for (li, line_segs) in segs.iter().enumerate() {
        for seg in line_segs {
            let Some(key) = seg.key else { continue };
            // ID cards follow no field numbering: a number there is a legend's (`1: Nom d'usage`).
            if layout == VizLayout::IdCard && seg.numbered {
                continue;
            }
            let key = resolve(key, layout);
            let mut value = seg.value.clone();
            let mut confidence = lines[li].confidence;
            let mut last_line = li;
            let line = &lines[li];
            let x = line.left + seg.at * (line.right - line.left);
            // A label printed in its own box: its value is the next box on its right (`LIC #:`
            // then `0812319684104`), else below it (bilingual ID cards).
            let last_segment = line_segs.last().is_some_and(|last| std::ptr::eq(last, seg));
            if value.is_empty()
                && last_segment
                && let Some(right) = line_right(lines, &segs, li, &used_below)
                && fits(key, &free_text(&segs[right]), order)
            {
                used_below[right] = true;
                value = free_text(&segs[right]);
                confidence = lines[right].confidence;
                last_line = right;
            }
            if value.is_empty()
                && let Some(below) = line_below(lines, &segs, li, x, &used_below)
                && fits(key, &free_text(&segs[below]), order)
            {
                used_below[below] = true;
                value = free_text(&segs[below]);
                confidence = lines[below].confidence;
                last_line = below;
            }
            if key == Key::Address {
                (value, confidence) =
                    address_lines_below(lines, &segs, last_line, value, confidence, &mut used_below);
            }
            if !value.is_empty() && !values.iter().any(|(k, _, _)| *k == key) {
                values.push((key, value, confidence));
                if key == Key::GivenNames {
                    given_line = Some(last_line);
                }
            }
        }
    }
    // The surname's number is often too small for the detector (`SAMPLE` over `2 BRENDA LYNN`):
    // in both numberings field 1 is the line right above field 2.
    if !values.iter().any(|(k, _, _)| *k == Key::Surname)
        && layout != VizLayout::IdCard
        && let Some(g) = given_line
        && let Some(above) = line_above(lines, &segs, g, &used_below)
    {
        values.push((Key::Surname, free_text(&segs[above]), lines[above].confidence));
    }

    // Field 8's small number glued to the house number by OCR (`8123 STREET ADDRESS` for
    // `8 123 STREET ADDRESS`): on a numbered AAMVA front with no field 8, a free line below the
    // given names made of `8`, more digits and a word is the address. A line with a number of its
    // own is a field 8 read apart, not this.
    if layout == VizLayout::Aamva
        && numbered
        && !values.iter().any(|(k, _, _)| *k == Key::Address)
        && let Some(g) = given_line
        && let Some((li, street)) = (0..lines.len())
            .filter(|&i| !used_below[i] && lines[i].top > lines[g].top)
            .find_map(|i| glued_field_8(&free_text(&segs[i])).map(|street| (i, street)))
    {
        used_below[li] = true;
        let (value, p) = address_lines_below(lines, &segs, li, street, lines[li].confidence, &mut used_below);
        values.push((Key::Address, value, p));
    }

    // No name label or number at all (West Virginia's invented design): the name is a free line
    // of two to four words right above an address that ends with a state's code and a ZIP code
    // (`CHRIS SMITH` over `MAIN STREET, CHARLESTON,` and `WV 25301`).
    if layout == VizLayout::Aamva
        && !values.iter().any(|(k, _, _)| matches!(k, Key::Surname | Key::GivenNames))
        && let Some((li, name, address, p)) = (0..lines.len()).find_map(|li| {
            let name = free_text(&segs[li]);
            if !is_unlabelled_name(&name) {
                return None;
            }
            let mut used = used_below.clone();
            used[li] = true;
            let (address, p) = address_lines_below(lines, &segs, li, String::new(), 1.0, &mut used);
            ends_with_state_and_zip(&address).then_some((li, name, address, p))
        })
    {
        // `SMITH, CHRIS` names the family first; `CHRIS SMITH` last.
        let (surname, given) = match name.split_once(',') {
            Some((surname, given)) => (clean_name(surname), clean_name(given)),
            None => {
                let name = clean_name(&name);
                name.rsplit_once(' ').map(|(g, s)| (s.to_string(), g.to_string())).unwrap_or_default()
            }
        };
        let p_name = lines[li].confidence;
        values.push((Key::Surname, surname, p_name));
        values.push((Key::GivenNames, given, p_name));
        if !values.iter().any(|(k, _, _)| *k == Key::Address) {
            values.push((Key::Address, address, p));
        }
    }

    let jurisdiction = match layout {
        VizLayout::Aamva => state,
        _ => eu_mrz
            .as_ref()
            .map(|m| sign_to_alpha3(&m.issuing_state).unwrap_or(&m.issuing_state).to_string())
            .or_else(|| (layout == VizLayout::EuDrivingLicence).then(|| flag_sign(lines, &folded)).flatten())
            .or_else(|| STATE_HEADERS.iter().find(|(h, _)| has(h)).map(|(_, c)| c.to_string())),
    };
    let mut fields = DocumentFields::default();
    let mut confidence = Vec::new();
    let mut categories = None;
    let put = |field: DocumentField, p: f32, confidence: &mut FieldConfidence| {
        confidence.push((field, (100.0 * p).clamp(0.0, 100.0)));
    };
    for (key, value, p) in &values {
        match key {
            Key::Surname => {
                fields.last_name = Some(clean_name(value));
                put(DocumentField::LastName, *p, &mut confidence);
            }
            Key::GivenNames => {
                let given = clean_name(value);
                // AAMVA prints first and middle names together: `2 JOHN QUINCY`.
                if layout == VizLayout::Aamva
                    && let Some((first, middle)) = given.split_once(' ')
                {
                    fields.first_name = Some(first.to_string());
                    fields.middle_name = Some(middle.to_string());
                    put(DocumentField::MiddleName, *p, &mut confidence);
                } else {
                    fields.first_name = Some(given);
                }
                put(DocumentField::FirstName, *p, &mut confidence);
            }
            Key::BirthDate => {
                if let Some(d) = find_date(value, order).and_then(|d| d.as_birth_date(today)) {
                    fields.date_of_birth = Some(d);
                    put(DocumentField::DateOfBirth, *p, &mut confidence);
                }
            }
            Key::IssueDate => {
                if let Some(d) = find_date(value, order).and_then(|d| d.as_other_date(today)) {
                    fields.issue_date = Some(d);
                    put(DocumentField::IssueDate, *p, &mut confidence);
                }
            }
            Key::ExpiryDate => {
                if let Some(d) = find_date(value, order).and_then(|d| d.as_other_date(today)) {
                    fields.expiration_date = Some(d);
                    put(DocumentField::ExpirationDate, *p, &mut confidence);
                }
            }
            Key::Number => {
                fields.document_number = Some(first_token(value));
                put(DocumentField::DocumentNumber, *p, &mut confidence);
            }
            Key::Address => {
                fields.address = Some(postal_code_fixed(value));
                put(DocumentField::Address, *p, &mut confidence);
            }
            Key::Sex => {
                if let Some(sex) = sex(value) {
                    fields.gender = Some(sex.to_string());
                    put(DocumentField::Gender, *p, &mut confidence);
                }
            }
            Key::Nationality => {
                fields.nationality = Some(nationality(value));
                put(DocumentField::Nationality, *p, &mut confidence);
            }
            Key::Categories => categories = Some(value.clone()),
            Key::Authority
            | Key::Discriminator
            | Key::Restrictions
            | Key::Height
            | Key::Eyes
            | Key::Numbered(_) => {}
        }
    }
    fields.full_name = match (&fields.first_name, &fields.middle_name, &fields.last_name) {
        (None, _, None) => None,
        (first, middle, last) => {
            Some([first, middle, last].into_iter().flatten().cloned().collect::<Vec<_>>().join(" "))
        }
    };
    if fields.full_name.is_some() {
        let p = confidence
            .iter()
            .filter(|(f, _)| matches!(f, DocumentField::FirstName | DocumentField::LastName))
            .map(|(_, p)| *p)
            .fold(100.0f32, f32::min);
        confidence.push((DocumentField::FullName, p));
    }
    fields.issuing_country = match layout {
        VizLayout::Aamva => state_country(jurisdiction.as_deref()),
        _ => jurisdiction.clone(),
    };
    if layout == VizLayout::Aamva {
        fields.issuing_jurisdiction = jurisdiction.clone().filter(|code| code.len() == 2);
    }
    // Read from a header, a flag or an MRZ line, not from one field: the page's mean.
    let mean = lines.iter().map(|l| l.confidence).sum::<f32>() / lines.len().max(1) as f32;
    let page_confidence = (100.0 * mean).clamp(0.0, 100.0);
    if fields.issuing_country.is_some() {
        confidence.push((DocumentField::IssuingCountry, page_confidence));
    }
    if fields.issuing_jurisdiction.is_some() {
        confidence.push((DocumentField::IssuingJurisdiction, page_confidence));
    }
    confidence.sort_by_key(|(f, _)| *f);
    Some(VizRead {
        layout,
        jurisdiction,
        identification_card: layout == VizLayout::IdCard
            || (has("IDENTIFICATION CARD")
                && !["DRIVER LICENSE", "DRIVERS LICENSE", "DRIVER S LICENSE"].iter().any(|t| has(t))),
        fields,
        field_confidence: confidence,
        categories,
        eu_mrz,
    })
}

/// Whether a line found near a label (on its right, below it) can be that label's value: a date
/// for a date, a sex for the sex, letters or digits in a number, letters in a name or nationality.
/// A line that cannot is left for the label it belongs to (a lone `M` the detector missed must not
/// make the sex label take the nationality below it, and so on down the card).
fn fits(key: Key, text: &str, order: DateOrder) -> bool {
    match key {
        Key::BirthDate | Key::IssueDate | Key::ExpiryDate => find_date(text, order).is_some(),
        Key::Sex => sex(text).is_some(),
        // Some ID card numbers have no digit (`GQQJZDXQN` can be German).
        Key::Number => text.chars().any(|c| c.is_ascii_alphanumeric()),
        Key::Surname | Key::GivenNames | Key::Nationality => text.chars().any(char::is_alphabetic),
        _ => true,
    }
}

/// AAMVA 4d is the licence number, 5 the document discriminator; in the EU, 5 is the number and 4d
/// a personal number that we do not report.
fn resolve(key: Key, layout: VizLayout) -> Key {
    match (key, layout) {
        (Key::Numbered("4D"), VizLayout::Aamva) => Key::Number,
        (Key::Numbered("5"), VizLayout::Aamva) => Key::Discriminator,
        (Key::Numbered("5"), _) => Key::Number,
        (other, _) => other,
    }
}

/// The US state or Canadian province named on the card, the header's first (an address may name
/// another state's town); the longest name wins (`WEST VIRGINIA` over `VIRGINIA`).
fn us_state(lines: &[TextLine], folded: &[String]) -> Option<String> {
    let find = |header_only: bool| {
        let text = format!(
            " {} ",
            lines
                .iter()
                .zip(folded)
                .filter(|(l, _)| !header_only || l.top < 0.3)
                .map(|(_, f)| words(f).into_iter().map(|w| w.bare).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        US_STATES
            .iter()
            .chain(CA_PROVINCES)
            .filter(|(name, _)| text.contains(&format!(" {name} ")))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, code)| code.to_string())
    };
    find(true).or_else(|| find(false))
}

fn state_country(state: Option<&str>) -> Option<String> {
    state.map(|code| if is_canadian_jurisdiction(code) { "CAN" } else { "USA" }.to_string())
}

fn sign_to_alpha3(sign: &str) -> Option<&'static str> {
    EU_SIGNS.iter().find(|(s, _)| *s == sign).map(|(_, c)| *c)
}

/// The distinguishing sign in the flag: a line of only 1 to 3 letters that is a known sign, in the
/// top-left quarter of the card.
fn flag_sign(lines: &[TextLine], folded: &[String]) -> Option<String> {
    lines.iter().zip(folded).find_map(|(l, f)| {
        let sign = f.trim();
        (l.left < 0.35 && l.top < 0.5).then(|| sign_to_alpha3(sign)).flatten().map(str::to_string)
    })
}

/// A sex label with no value read for it: the label's line and where the label starts along it
/// (0 to 1, by characters). Its value is a lone letter below it (`SEXE / Sex` over `F`), which the
/// detector misses more often than a word (a coin toss on far or turned photos, BENCHMARKS.md,
/// session 10): the reader then reads the place below the label on its own.
pub fn unread_sex_label(lines: &[TextLine]) -> Option<(usize, f32)> {
    let segs: Vec<Vec<Segment>> = lines.iter().map(|l| segments(&l.text)).collect();
    let (li, at) = segs.iter().enumerate().find_map(|(i, line)| {
        line.iter().find(|s| s.key == Some(Key::Sex) && s.value.is_empty()).map(|s| (i, s.at))
    })?;
    let none_used = vec![false; lines.len()];
    let value_near = free_lines_near(lines, &segs, li, &none_used, |l, b, height| {
        b.top >= l.top - 0.5 * height && b.top <= l.bottom + 2.5 * height && sex(&b.text).is_some()
    })
    .any(|(_, b)| b.text.chars().count() <= 12);
    (!value_near).then_some((li, at))
}

/// The text of a line that has no marker of its own.
fn free_text(segs: &[Segment]) -> String {
    match segs {
        [Segment { key: None, value, .. }] => value.clone(),
        _ => String::new(),
    }
}

/// The unused lines other than `li` that hold only free text and that `near` accepts, given
/// `li`'s line and its height (the measure of every distance below).
fn free_lines_near<'a>(
    lines: &'a [TextLine],
    segs: &'a [Vec<Segment>],
    li: usize,
    used: &'a [bool],
    near: impl Fn(&TextLine, &TextLine, f32) -> bool + 'a,
) -> impl Iterator<Item = (usize, &'a TextLine)> + 'a {
    let l = &lines[li];
    let height = (l.bottom - l.top).max(1e-3);
    lines.iter().enumerate().filter(move |&(j, other)| {
        j != li && !used[j] && near(l, other, height) && !free_text(&segs[j]).is_empty()
    })
}

/// The free-text line right above `li` (no more than one line height of gap, starting within two
/// line heights of it).
fn line_above(lines: &[TextLine], segs: &[Vec<Segment>], li: usize, used: &[bool]) -> Option<usize> {
    free_lines_near(lines, segs, li, used, |l, a, height| {
        a.bottom <= l.top + 0.5 * height
            && l.top - a.bottom <= height
            && (a.left - l.left).abs() <= 2.0 * height
    })
    .max_by(|(_, a), (_, b)| a.top.total_cmp(&b.top))
    .map(|(j, _)| j)
}

/// The nearest unused free-text line to the right of `li` on the same row (half its height or more
/// overlapping), within four line heights.
fn line_right(lines: &[TextLine], segs: &[Vec<Segment>], li: usize, used: &[bool]) -> Option<usize> {
    free_lines_near(lines, segs, li, used, |l, b, height| {
        let overlap = l.bottom.min(b.bottom) - l.top.max(b.top);
        overlap >= 0.5 * height.min(b.bottom - b.top)
            && b.left >= l.right - 0.5 * height
            && b.left <= l.right + 4.0 * height
    })
    .min_by(|(_, a), (_, b)| a.left.total_cmp(&b.left))
    .map(|(j, _)| j)
}

/// The nearest unused line below `li` that starts near `x` (the column) and holds only free text.
fn line_below(lines: &[TextLine], segs: &[Vec<Segment>], li: usize, x: f32, used: &[bool]) -> Option<usize> {
    free_lines_near(lines, segs, li, used, |l, b, height| {
        b.top >= l.top + 0.5 * height
            && b.top <= l.bottom + 2.5 * height
            && (b.left - x).abs() <= 2.0 * height
    })
    .min_by(|(_, a), (_, b)| a.top.total_cmp(&b.top))
    .map(|(j, _)| j)
}

/// An address's value followed by up to two more lines right below `from` (city, state, ZIP).
fn address_lines_below(
    lines: &[TextLine],
    segs: &[Vec<Segment>],
    mut from: usize,
    mut value: String,
    mut confidence: f32,
    used: &mut [bool],
) -> (String, f32) {
    for _ in 0..2 {
        let Some(below) = line_below(lines, segs, from, lines[from].left, used) else { break };
        if !close_below(&lines[from], &lines[below]) {
            break;
        }
        used[below] = true;
        value = format!("{value}, {}", free_text(&segs[below])).trim_start_matches(", ").to_string();
        confidence = confidence.min(lines[below].confidence);
        from = below;
    }
    (value, confidence)
}

/// `8123 STREET ADDRESS` → `123 STREET ADDRESS`: field 8's number glued to a house number (at
/// least one digit left) followed by a word of letters.
fn glued_field_8(text: &str) -> Option<String> {
    let text = text.trim();
    // `839CALLE MAYOR`: the street's first word glued to the number too.
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, street) = if text[digits..].starts_with(char::is_alphabetic) {
        text.split_at(digits)
    } else {
        text.split_once(' ')?
    };
    let house = number.strip_prefix('8')?;
    let street = street.trim();
    (!house.is_empty()
        && house.len() <= 6
        && house.chars().all(|c| c.is_ascii_digit())
        && street
            .split_whitespace()
            .next()
            .is_some_and(|w| w.len() >= 2 && w.chars().all(char::is_alphabetic)))
    .then(|| format!("{house} {street}"))
}

/// Two to four words of letters (a name printed without a label), none a state's or province's
/// name or a title.
fn is_unlabelled_name(text: &str) -> bool {
    let folded = fold(text);
    let ws: Vec<&str> = folded.split_whitespace().collect();
    let padded = format!(" {} ", ws.join(" "));
    (2..=4).contains(&ws.len())
        && ws.iter().all(|w| {
            w.trim_end_matches([',', '.']).chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'')
                && w.chars().any(char::is_alphabetic)
        })
        && !US_STATES.iter().chain(CA_PROVINCES).any(|(name, _)| padded.contains(&format!(" {name} ")))
        && !US_TITLES.iter().any(|t| padded.contains(&format!(" {t} ")))
}

/// An address's last words: a state's code and a ZIP code (`WV 25301`, `CA 95818-1234`), or a
/// province's and a Canadian postal code (`ON M5V 2T6`).
fn ends_with_state_and_zip(address: &str) -> bool {
    let folded = fold(address);
    let ws: Vec<&str> = folded.split_whitespace().map(|w| w.trim_matches(',')).collect();
    let is_zip = |zip: &str| {
        (5..=10).contains(&zip.len())
            && zip.chars().all(|c| c.is_ascii_digit() || c == '-')
            && zip.chars().take(5).all(|c| c.is_ascii_digit())
    };
    match ws[..] {
        [.., code, a, b] if is_canadian_jurisdiction(code) && is_postal_code(&format!("{a}{b}")) => true,
        [.., code, postal] if is_canadian_jurisdiction(code) => is_postal_code(postal),
        [.., code, zip] => US_STATES.iter().any(|(_, c)| *c == code) && is_zip(zip),
        _ => false,
    }
}

/// A Canadian postal code without its space: letter, digit, letter, digit, letter, digit.
fn is_postal_code(code: &str) -> bool {
    code.len() == 6
        && code
            .chars()
            .enumerate()
            .all(|(i, c)| if i % 2 == 0 { c.is_ascii_uppercase() } else { c.is_ascii_digit() })
}

/// A Canadian postal code at the end of an address with OCR's O/0-style confusions undone: its
/// shape (A1A 1A1) says which characters are letters and which digits. Anything else unchanged.
fn postal_code_fixed(address: &str) -> String {
    let Some((head, last)) = address.trim_end().rsplit_once(' ') else { return address.to_string() };
    let Some((before, first)) = head.rsplit_once(' ') else { return address.to_string() };
    let province = before.split_whitespace().last().map(|w| fold(w.trim_matches(',')));
    if first.chars().count() != 3
        || last.chars().count() != 3
        || !province.is_some_and(|p| is_canadian_jurisdiction(&p))
    {
        return address.to_string();
    }
    let fixed: String = first
        .chars()
        .chain(last.chars())
        .enumerate()
        .map(|(i, c)| match (i % 2 == 0, c) {
            (true, '0') => 'O',
            (true, '1') => 'I',
            (true, '5') => 'S',
            (true, '8') => 'B',
            (false, 'O') => '0',
            (false, 'I' | 'L') => '1',
            (false, 'S') => '5',
            (false, 'B') => '8',
            (false, 'Z') => '2',
            (_, c) => c,
        })
        .collect();
    if is_postal_code(&fixed) {
        format!("{before} {} {}", &fixed[..3], &fixed[3..])
    } else {
        address.to_string()
    }
}

/// `b` continues `a` (an address line): no more than one line height of gap.
fn close_below(a: &TextLine, b: &TextLine) -> bool {
    b.top - a.bottom <= (a.bottom - a.top)
}

fn clean_name(value: &str) -> String {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_token(value: &str) -> String {
    // Numbers are sometimes printed in groups (`13 AA 00002`, `S123-456-78`): keep the groups.
    let mut parts = value.split_whitespace();
    let groups: Vec<&str> = parts
        .next()
        .into_iter()
        .chain(parts.take_while(|w| {
            w.chars().any(|c| c.is_ascii_digit())
                || (w.len() <= 2 && w.chars().all(|c| c.is_ascii_uppercase()))
        }))
        .collect();
    groups.concat().chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// A nationality as the MRZ gives it, ISO 3166 alpha-3: the adjective some cards print
/// (`Française`, `DEUTSCH`) as its code, anything else as its first word.
fn nationality(value: &str) -> String {
    let folded = fold(value);
    let word =
        folded.split_whitespace().next().unwrap_or_default().trim_matches(|c: char| !c.is_alphabetic());
    match NATIONALITY_WORDS.iter().find(|(w, _)| *w == word) {
        Some((_, code)) => code.to_string(),
        None => first_token(value),
    }
}

fn sex(value: &str) -> Option<&'static str> {
    let f = fold(value);
    let first = f.split(|c: char| !c.is_ascii_alphabetic()).find(|w| !w.is_empty())?;
    match first {
        "M" | "MALE" | "MASCULIN" | "MASCULINO" | "MANNLICH" | "MASCHILE" | "H" | "HOMBRE" => Some("M"),
        "F" | "FEMALE" | "FEMININ" | "FEMENINO" | "WEIBLICH" | "FEMMINILE" | "W" | "MUJER" => Some("F"),
        "X" => Some("X"),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateOrder {
    /// MM/DD/YYYY (US).
    MonthFirst,
    /// DD.MM.YYYY, DD/MM/YYYY, DD MM YYYY (Europe).
    DayFirst,
}

/// A printed date before its century is known (`yy` is `None` for a four-digit year).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PrintedDate {
    year: i32,
    two_digit_year: bool,
    month: u32,
    day: u32,
}

impl PrintedDate {
    fn as_birth_date(self, today: NaiveDate) -> Option<NaiveDate> {
        if self.two_digit_year {
            return mrz::birth_date(&format!("{:02}{:02}{:02}", self.year, self.month, self.day), today);
        }
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)
    }

    fn as_other_date(self, today: NaiveDate) -> Option<NaiveDate> {
        if self.two_digit_year {
            return mrz::expiry_date(&format!("{:02}{:02}{:02}", self.year, self.month, self.day), today);
        }
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)
    }
}

/// The first date in `text` in the given order; a US card whose first number cannot be a month is
/// read day first (some states print DD/MM for foreign holders, and Canada does).
fn find_date(text: &str, order: DateOrder) -> Option<PrintedDate> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit()
            && (i == 0 || !chars[i - 1].is_ascii_digit())
            && let Some(date) = date_at(&chars[i..], order).or_else(|| month_name_date_at(&chars[i..]))
        {
            return Some(date);
        }
        i += 1;
    }
    None
}

/// Month abbreviations of the five languages (and Dutch), folded: the first letters of a month
/// word. Passports and some cards print `12 AUG/AOUT 74`, `19 OKT/OCT 1971`, `16 APR/ABR 07`.
const MONTHS: [&[&str]; 12] = [
    &["JAN", "ENE", "GEN"],
    &["FEB", "FEV"],
    &["MAR", "MRZ", "MRT"],
    &["APR", "AVR", "ABR"],
    &["MAY", "MAI", "MAG", "MEI"],
    &["JUN", "GIU"],
    &["JUL", "LUG"],
    &["AUG", "AOU", "AGO"],
    &["SEP", "SET"],
    &["OCT", "OKT", "OTT"],
    &["NOV"],
    &["DEC", "DEZ", "DIC"],
];

fn month_of(word: &str) -> Option<u32> {
    let word = fold(word);
    // French JUIN / JUIL share JUI: the fourth letter decides.
    match word.get(..4) {
        Some("JUIN") => return Some(6),
        Some("JUIL") => return Some(7),
        _ => {}
    }
    let head: String = word.chars().take(3).collect();
    MONTHS.iter().position(|names| names.contains(&head.as_str())).map(|m| m as u32 + 1)
}

/// `DD MON YY(YY)`, the month a word (its first language before a slash: `AUG/AOUT`).
fn month_name_date_at(chars: &[char]) -> Option<PrintedDate> {
    let text: String = chars.iter().collect();
    let mut parts = text.split_whitespace();
    let day: u32 = parts.next().filter(|d| d.len() <= 2)?.parse().ok()?;
    let month = month_of(parts.next()?.split('/').next()?)?;
    let year_text = parts.next()?;
    let year_digits: String = year_text.chars().take_while(char::is_ascii_digit).collect();
    if !(year_digits.len() == 2 || year_digits.len() == 4) || year_digits.len() != year_text.len() {
        return None;
    }
    if !(1..=31).contains(&day) {
        return None;
    }
    Some(PrintedDate { year: year_digits.parse().ok()?, two_digit_year: year_digits.len() == 2, month, day })
}

fn date_at(chars: &[char], order: DateOrder) -> Option<PrintedDate> {
    // Three digit groups separated by one of `. / -` or a space, e.g. 08/31/1977, 13.09.13, 13 07 1990.
    let mut groups: Vec<String> = Vec::new();
    let mut i = 0;
    let mut separator: Option<char> = None;
    while groups.len() < 3 {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        groups.push(chars[start..i].iter().collect());
        if groups.len() == 3 {
            break;
        }
        // OCR reads a dot as a colon (`31.12:2015`): the same separator for this purpose.
        let sep = match *chars.get(i)? {
            ':' => '.',
            c => c,
        };
        if !matches!(sep, '.' | '/' | '-' | ' ') || separator.is_some_and(|s| s != sep) {
            return None;
        }
        separator = Some(sep);
        i += 1;
    }
    // More digits, or a fourth group (`3.11.09.1981` is field 3 glued to a date), is no date.
    let fourth_group = separator
        .is_some_and(|s| chars.get(i).is_some_and(|&c| c == s || (s == '.' && c == ':')))
        && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit());
    if chars.get(i).is_some_and(|c| c.is_ascii_digit()) || fourth_group {
        return None;
    }
    // Year first (`1990/03/23`, `1990-03-23`: Canada, ISO) is unambiguous in every region.
    if groups[0].len() == 4 && groups[1].len() <= 2 && groups[2].len() <= 2 {
        let (year, month, day): (i32, u32, u32) =
            (groups[0].parse().ok()?, groups[1].parse().ok()?, groups[2].parse().ok()?);
        if !(1900..=2100).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        return Some(PrintedDate { year, two_digit_year: false, month, day });
    }
    let (a, b, y) = (&groups[0], &groups[1], &groups[2]);
    if a.len() > 2 || b.len() > 2 || !(y.len() == 2 || y.len() == 4) {
        return None;
    }
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    let year: i32 = y.parse().ok()?;
    let (month, day) = match order {
        DateOrder::MonthFirst if a > 12 => (b, a),
        DateOrder::MonthFirst => (a, b),
        DateOrder::DayFirst => (b, a),
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(PrintedDate { year, two_digit_year: y.len() == 2, month, day })
}

/// The checks a visual zone supports, and the reasons for those that fail.
pub fn checks(read: &VizRead, today: NaiveDate) -> (Vec<Check>, Vec<&'static str>) {
    let f = &read.fields;
    let mut checks = Vec::new();
    let mut reasons = Vec::new();
    let not_expired = f.expiration_date.is_some_and(|e| e >= today);
    checks.push(Check { name: "not_expired", passed: not_expired });
    if !not_expired {
        reasons.push(if f.expiration_date.is_some() { "expired" } else { "expiry_unreadable" });
    }
    let plausible_birth = f.date_of_birth.is_some_and(|b| {
        b <= today && today.year() - b.year() <= 120 && f.issue_date.is_none_or(|issued| b < issued)
    });
    checks.push(Check { name: "birth_date_plausible", passed: plausible_birth });
    if !plausible_birth {
        reasons.push("birth_date_implausible");
    }
    if read.layout == VizLayout::Aamva
        && let (Some(state), Some(number)) = (read.jurisdiction.as_deref(), f.document_number.as_deref())
        && let Some((_, shapes)) = AAMVA_NUMBER_SHAPES.iter().find(|(s, _)| *s == state)
    {
        let shape: String = number
            .chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    '9'
                } else if c.is_ascii_alphabetic() {
                    'A'
                } else {
                    c
                }
            })
            .collect();
        let passed = shapes.contains(&shape.as_str());
        checks.push(Check { name: "document_number_format", passed });
        if !passed {
            reasons.push("document_number_format");
        }
    }
    if let Some(m) = &read.eu_mrz {
        let digits = m.check_digits_pass();
        checks.push(Check { name: "eu_dl_mrz_check_digit", passed: digits });
        if !digits {
            reasons.push("check_digit_failed");
        }
        let consistent = eu_mrz_agrees(m, read);
        checks.push(Check { name: "viz_mrz_consistent", passed: consistent });
        if !consistent {
            reasons.push("viz_mrz_mismatch");
        }
    }
    (checks, reasons)
}

/// The EU licence MRZ line agrees with the visual zone on every field both carry.
fn eu_mrz_agrees(m: &EuDlMrz, read: &VizRead) -> bool {
    let f = &read.fields;
    let number_ok = f.document_number.as_deref().is_none_or(|n| m.contains_number(n));
    let state_ok = read
        .jurisdiction
        .as_deref()
        .is_none_or(|j| sign_to_alpha3(&m.issuing_state).unwrap_or(&m.issuing_state) == j);
    let french_ok = m.french.as_ref().is_none_or(|fr| {
        let surname_ok = f.last_name.as_deref().is_none_or(|s| {
            let s = eu_dl_mrz::compact(s);
            s.starts_with(&fr.surname_prefix) || fr.surname_prefix.starts_with(&s)
        });
        let date_ok = match (f.issue_date, f.expiration_date, fr.date) {
            (None, None, _) => true,
            (issue, expiry, Some(d)) => issue == Some(d) || expiry == Some(d),
            (_, _, None) => false,
        };
        surname_ok && date_ok
    });
    number_ok && state_ok && french_ok
}

/// A field on which the visual zone and the MRZ of the same document clearly disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disagreement {
    Surname,
    GivenNames,
    BirthDate,
    DocumentNumber,
    ExpiryDate,
}

/// Compares a page's printed fields with an ICAO MRZ read on the same page (name, birth date,
/// number, expiry). `viz` holds the fields read by their labels; `lines` is the whole page. A field
/// counts as compared when its label was read or its MRZ value is printed anywhere on the page; it
/// disagrees only when its labelled value differs from the MRZ and the MRZ value is printed nowhere
/// (a label mapped to the wrong line is not a forgery). Names are compared folded, with the MRZ's
/// truncation and one OCR slip allowed; numbers with O/0 and I/1 allowed; dates exactly. `None`
/// when no field could be compared.
pub fn cross_check_mrz(
    record: &mrz::MrzRecord,
    viz: &DocumentFields,
    lines: &[TextLine],
    today: NaiveDate,
) -> Option<(Check, Vec<Disagreement>)> {
    let page = PageValues::of(lines);
    let mrz_text = |s: &str| s.replace('<', " ").trim().to_string();
    let surname = mrz_text(&record.surname);
    let given = mrz_text(&record.given_names);
    let first_given = given.split_whitespace().next().unwrap_or("").to_string();
    let number = mrz_text(&record.document_number);
    let first_word = |v: &str| v.split([' ', ',']).find(|w| !w.is_empty()).unwrap_or("").to_string();
    // (what, labelled value agrees (None: no label read), MRZ value printed somewhere (None: the MRZ has none))
    let fields = [
        (
            Disagreement::Surname,
            viz.last_name.as_deref().map(|v| names_agree(v, &surname)),
            (!surname.is_empty()).then(|| surname.split_whitespace().all(|w| page.has_name(w))),
        ),
        (
            // The MRZ may truncate given names, and a card may print only the first of them.
            Disagreement::GivenNames,
            viz.first_name.as_deref().map(|v| names_agree(&first_word(v), &first_given)),
            (!first_given.is_empty()).then(|| page.has_name(&first_given)),
        ),
        (
            Disagreement::BirthDate,
            viz.date_of_birth.zip(record.birth_date).map(|(a, b)| a == b),
            record.birth_date.map(|d| page.has_date(d, today)),
        ),
        (
            Disagreement::ExpiryDate,
            viz.expiration_date.zip(record.expiry_date).map(|(a, b)| a == b),
            record.expiry_date.map(|d| page.has_date(d, today)),
        ),
        (
            Disagreement::DocumentNumber,
            viz.document_number.as_deref().map(|v| numbers_agree(v, &number)),
            (!number.is_empty()).then(|| page.has_number(&number)),
        ),
    ];
    let mut compared = 0;
    let mut out = Vec::new();
    for (what, labelled, printed) in fields {
        let Some(printed) = printed else { continue };
        match labelled {
            Some(agrees) => {
                compared += 1;
                if !agrees && !printed {
                    out.push(what);
                }
            }
            None if printed => compared += 1,
            None => {}
        }
    }
    (compared > 0).then_some((Check { name: "viz_mrz_consistent", passed: out.is_empty() }, out))
}

/// What a page prints, for looking MRZ values up: its words (and pairs of neighbouring words, for
/// numbers printed in two groups) and its dates.
struct PageValues {
    words: Vec<String>,
    dates: Vec<PrintedDate>,
}

impl PageValues {
    fn of(lines: &[TextLine]) -> PageValues {
        let mut words = Vec::new();
        let mut dates = Vec::new();
        // The MRZ lines themselves would agree with the MRZ whatever the printed fields say.
        for line in lines.iter().filter(|l| !is_mrz_like(&l.text)) {
            let line_words: Vec<String> = line
                .text
                .split(|c: char| c.is_whitespace() || c == '/' || c == ',')
                .map(eu_dl_mrz::compact)
                .filter(|w| !w.is_empty())
                .collect();
            for pair in line_words.windows(2) {
                words.push(format!("{}{}", pair[0], pair[1]));
            }
            words.extend(line_words);
            dates.extend(all_dates(&line.text));
        }
        PageValues { words, dates }
    }

    fn has_name(&self, name: &str) -> bool {
        self.words.iter().any(|w| names_agree(w, name))
    }

    /// A number printed as it is, or after a label glued to it (`N°029067`).
    fn has_number(&self, number: &str) -> bool {
        let number = normalize_number(number);
        number.len() >= 5 && self.words.iter().any(|w| normalize_number(w).contains(&number))
    }

    fn has_date(&self, date: NaiveDate, today: NaiveDate) -> bool {
        self.dates
            .iter()
            .any(|d| d.as_birth_date(today) == Some(date) || d.as_other_date(today) == Some(date))
    }
}

/// Every date of a line, day first (the order of passports and ID cards).
fn all_dates(text: &str) -> Vec<PrintedDate> {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len())
        .filter(|&i| chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit()))
        .filter_map(|i| date_at(&chars[i..], DateOrder::DayFirst).or_else(|| month_name_date_at(&chars[i..])))
        .collect()
}

fn names_agree(viz: &str, mrz: &str) -> bool {
    let (a, b) = (eu_dl_mrz::compact(viz), eu_dl_mrz::compact(mrz));
    if a.is_empty() || b.is_empty() {
        return true;
    }
    // The MRZ truncates long names: compare the visual zone's start with it (compact is ASCII).
    let a = if a.len() > b.len() && b.len() >= 20 { &a[..b.len()] } else { &a[..] };
    crate::eval::edit_distance(a, &b) <= 1
}

fn numbers_agree(viz: &str, mrz: &str) -> bool {
    normalize_number(viz) == normalize_number(mrz)
}

/// Upper case letters and digits, O read as 0 and I as 1 (the usual OCR and typing confusions).
fn normalize_number(s: &str) -> String {
    eu_dl_mrz::compact(s)
        .chars()
        .map(|c| match c {
            'O' => '0',
            'I' => '1',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests;
