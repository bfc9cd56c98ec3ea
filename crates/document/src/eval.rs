//! Evaluation commands behind `idverify eval mrz|viz|pdf417|aamva`. Reports print only file names and
//! per-image pass/fail figures, never the personal data read.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;

use crate::{DocumentEngine, DocumentError, aamva, barcode, mrz};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("manifest {0} lacks column {1}")]
    Column(PathBuf, &'static str),
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Engine(#[from] DocumentError),
}

/// Totals of an MRZ evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct MrzSummary {
    pub images: usize,
    pub exact: usize,
    pub cer: f64,
    /// Reads reported as valid (all check digits pass, name not flagged uncertain) although some
    /// field differs from the ground truth.
    pub false_valid: usize,
    /// Reads whose check digits all pass although some field differs (uncertain names included).
    pub false_digits_valid: usize,
    pub median_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountSummary {
    pub ok: usize,
    pub total: usize,
}

fn read_manifest(manifest: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), EvalError> {
    let err = |reason: String| EvalError::Manifest { path: manifest.to_path_buf(), reason };
    let mut reader = csv::Reader::from_path(manifest).map_err(|e| err(e.to_string()))?;
    let headers: Vec<String> =
        reader.headers().map_err(|e| err(e.to_string()))?.iter().map(String::from).collect();
    let mut rows = Vec::new();
    for rec in reader.records() {
        rows.push(rec.map_err(|e| err(e.to_string()))?.iter().map(String::from).collect());
    }
    Ok((headers, rows))
}

fn column(manifest: &Path, headers: &[String], name: &'static str) -> Result<usize, EvalError> {
    headers.iter().position(|h| h == name).ok_or_else(|| EvalError::Column(manifest.to_path_buf(), name))
}

fn base_dir(manifest: &Path) -> PathBuf {
    manifest.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn same_fields(a: &mrz::MrzRecord, b: &mrz::MrzRecord) -> bool {
    a.format == b.format
        && a.document_code == b.document_code
        && a.issuing_country == b.issuing_country
        && a.surname == b.surname
        && a.given_names == b.given_names
        && a.document_number == b.document_number
        && a.nationality == b.nationality
        && a.birth_date == b.birth_date
        && a.sex == b.sex
        && a.expiry_date == b.expiry_date
        && a.optional_data == b.optional_data
        && a.optional_data_2 == b.optional_data_2
}

/// CPU time of the calling thread in ms, so that timings mean something on a busy machine.
/// ONNX Runtime runs single-threaded sessions on the caller's thread.
pub(crate) fn thread_cpu_ms() -> Option<f64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID is always valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6)
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// `idverify eval mrz --manifest PATH/manifest.csv` (columns `file`, `mrz_line1..3`).
pub fn mrz(engine: &DocumentEngine, manifest: &Path, out: &mut dyn Write) -> Result<MrzSummary, EvalError> {
    let (headers, rows) = read_manifest(manifest)?;
    let file_col = column(manifest, &headers, "file")?;
    let line_cols = [
        column(manifest, &headers, "mrz_line1")?,
        column(manifest, &headers, "mrz_line2")?,
        column(manifest, &headers, "mrz_line3")?,
    ];
    let today = chrono::Local::now().date_naive();
    let dir = base_dir(manifest);
    let (mut exact, mut false_valid, mut errors, mut chars) = (0usize, 0usize, 0usize, 0usize);
    let mut false_digits_valid = 0usize;
    let mut name_uncertain = 0usize;
    let mut cpu_times = Vec::new();
    let mut times = Vec::new();
    writeln!(
        out,
        "file\texact\tcer\tcheck_digits_valid\tname_uncertain\tms\tcpu_ms\tsize\tdet_runs\tdet_cpu_ms\tlines\trec_cpu_ms"
    )?;
    let runs_before = engine.ocr_runs();
    for row in &rows {
        let file = &row[file_col];
        let expected: Vec<&str> =
            line_cols.iter().map(|&c| row[c].trim()).filter(|l| !l.is_empty()).collect();
        let expected_text = expected.join("\n");
        let image = match image::open(dir.join(file)) {
            Ok(i) => i.to_rgb8(),
            Err(e) => {
                writeln!(out, "{file}\tno\t1.000\tno\tno\t0\t0\t(cannot open: {e})")?;
                errors += expected_text.chars().count();
                chars += expected_text.chars().count();
                continue;
            }
        };
        let runs_start = engine.ocr_runs();
        let started = Instant::now();
        let cpu_start = thread_cpu_ms();
        let read = engine.ocr.read(&image, today)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let cpu_ms = match (cpu_start, thread_cpu_ms()) {
            (Some(a), Some(b)) => b - a,
            _ => ms,
        };
        times.push(ms);
        cpu_times.push(cpu_ms);
        let (read_text, valid, uncertain, record) = match read {
            crate::ocr::MrzOutcome::Found(r) => (
                r.record.lines.join("\n"),
                r.record.all_check_digits_pass(),
                r.name_uncertain,
                Some(r.record),
            ),
            _ => (String::new(), false, false, None),
        };
        let vouched = valid && !uncertain;
        name_uncertain += usize::from(uncertain);
        let is_exact = read_text == expected_text;
        let dist = edit_distance(&read_text, &expected_text);
        errors += dist;
        chars += expected_text.chars().count();
        exact += usize::from(is_exact);
        if let (Some(record), true) = (&record, valid) {
            let truth = mrz::parse(&expected, today).ok();
            if !truth.is_some_and(|t| same_fields(&t, record)) {
                false_digits_valid += 1;
                false_valid += usize::from(vouched);
            }
        }
        let cer = dist as f64 / expected_text.chars().count().max(1) as f64;
        let runs = engine.ocr_runs().since(&runs_start);
        writeln!(
            out,
            "{file}\t{}\t{cer:.3}\t{}\t{}\t{ms:.0}\t{cpu_ms:.0}\t{}x{}\t{}\t{:.0}\t{}\t{:.0}",
            if is_exact { "yes" } else { "no" },
            if valid { "yes" } else { "no" },
            if uncertain { "yes" } else { "no" },
            image.width(),
            image.height(),
            runs.detector_runs,
            runs.detector_cpu_ms,
            runs.recognizer_runs,
            runs.recognizer_cpu_ms,
        )?;
    }
    let summary = MrzSummary {
        images: rows.len(),
        exact,
        cer: errors as f64 / chars.max(1) as f64,
        false_valid,
        false_digits_valid,
        median_ms: median(&mut times),
    };
    let runs = engine.ocr_runs().since(&runs_before);
    let scans = cpu_times.len().max(1) as f64;
    writeln!(
        out,
        "per scan (mean): detector_runs={:.2} detector_input_kpx={:.0} detector_cpu_ms={:.1} \
         lines_recognized={:.2} line_width_px={:.0} recognizer_cpu_ms={:.1}",
        runs.detector_runs as f64 / scans,
        runs.detector_pixels as f64 / runs.detector_runs.max(1) as f64 / 1000.0,
        runs.detector_cpu_ms / scans,
        runs.recognizer_runs as f64 / scans,
        runs.recognizer_columns as f64 / runs.recognizer_runs.max(1) as f64,
        runs.recognizer_cpu_ms / scans,
    )?;
    writeln!(
        out,
        "images={} exact_count={} check_digits_pass_but_field_wrong={false_digits_valid} \
         name_uncertain={name_uncertain} median_cpu_ms={:.0}",
        summary.images,
        summary.exact,
        median(&mut cpu_times)
    )?;
    writeln!(
        out,
        "exact={:.3} cer={:.4} false_valid={} median_ms={:.0}",
        summary.exact as f64 / summary.images.max(1) as f64,
        summary.cer,
        summary.false_valid,
        summary.median_ms
    )?;
    Ok(summary)
}

/// Totals of a visual-zone evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct VizSummary {
    pub documents: usize,
    /// Fields read exactly / fields the manifest lists.
    pub fields_exact: f64,
    /// Documents with every listed field exact.
    pub docs_all_fields: usize,
    /// Documents whose checks all passed although some field differs from the manifest.
    pub false_valid: usize,
    pub median_cpu_ms: f64,
}

/// The manifest columns of `eval viz` and how each compares with a scan.
const VIZ_FIELDS: [&str; 9] = [
    "surname",
    "given_names",
    "birth_date",
    "issue_date",
    "expiry_date",
    "number",
    "sex",
    "address",
    "nationality",
];

/// What `scan` read for a manifest column of `eval viz` (`surname`, `birth_date` as ISO, …).
pub fn viz_value(scan: &crate::DocumentScan, column: &str) -> Option<String> {
    let f = &scan.fields;
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string());
    match column {
        "surname" => f.last_name.clone(),
        "given_names" => match (&f.first_name, &f.middle_name) {
            (Some(first), Some(middle)) => Some(format!("{first} {middle}")),
            (first, _) => first.clone(),
        },
        "birth_date" => date(f.date_of_birth),
        "issue_date" => date(f.issue_date),
        "expiry_date" => date(f.expiration_date),
        "number" => f.document_number.clone(),
        "sex" => f.gender.clone(),
        "address" => f.address.clone(),
        "nationality" => f.nationality.clone(),
        _ => None,
    }
}

/// Compared folded (upper case, no accents) and without spaces or punctuation: what OCR cannot
/// be asked to reproduce of the print.
pub fn viz_same(expected: &str, read: &str) -> bool {
    crate::eu_dl_mrz::compact(expected) == crate::eu_dl_mrz::compact(read)
}

/// `idverify eval viz --manifest PATH/manifest.csv`: card fronts (columns `image`, `layout` =
/// the expected `source`, then the printed fields, dates ISO; empty = not printed), as written by
/// `scripts/synth_fronts.py`. Prints per-field exact match, never the values.
pub fn viz(engine: &DocumentEngine, manifest: &Path, out: &mut dyn Write) -> Result<VizSummary, EvalError> {
    let (headers, rows) = read_manifest(manifest)?;
    let image_col = column(manifest, &headers, "image")?;
    let layout_col = column(manifest, &headers, "layout")?;
    let field_cols: Vec<(&str, usize)> =
        VIZ_FIELDS.iter().filter_map(|&f| headers.iter().position(|h| h == f).map(|c| (f, c))).collect();
    let today = chrono::Local::now().date_naive();
    let dir = base_dir(manifest);
    let mut per_field: HashMap<&str, (usize, usize)> = HashMap::new();
    let (mut exact_total, mut listed_total, mut all_fields, mut false_valid) =
        (0usize, 0usize, 0usize, 0usize);
    let mut cpu_times = Vec::new();
    writeln!(
        out,
        "file\tsource_ok\tfields_exact\tchecks_passed\tcpu_ms\tdet_runs\tdet_cpu_ms\tlines\trec_cpu_ms\tmissed"
    )?;
    let runs_before = engine.ocr_runs();
    for row in &rows {
        let file = &row[image_col];
        let layout = row[layout_col].trim();
        let requested = if layout == "viz_id_card" {
            crate::RequestedType::NationalId
        } else {
            crate::RequestedType::DriversLicense
        };
        let runs_start = engine.ocr_runs();
        let scan = match image::open(dir.join(file)) {
            Ok(image) => {
                let cpu_start = thread_cpu_ms();
                let scan = engine.scan(&image.to_rgb8(), requested, today)?;
                if let (Some(a), Some(b)) = (cpu_start, thread_cpu_ms()) {
                    cpu_times.push(b - a);
                }
                Some(scan)
            }
            Err(_) => None,
        };
        let (mut exact, mut listed) = (0usize, 0usize);
        let mut missed = Vec::new();
        for &(name, col) in &field_cols {
            let expected = row[col].trim();
            if expected.is_empty() {
                continue;
            }
            listed += 1;
            let ok =
                scan.as_ref().and_then(|s| viz_value(s, name)).is_some_and(|read| viz_same(expected, &read));
            let entry = per_field.entry(name).or_default();
            entry.1 += 1;
            if ok {
                exact += 1;
                entry.0 += 1;
            } else {
                missed.push(name);
            }
        }
        exact_total += exact;
        listed_total += listed;
        all_fields += usize::from(exact == listed);
        let checks_passed = scan.as_ref().is_some_and(|s| s.checks_passed());
        false_valid += usize::from(checks_passed && exact < listed);
        let runs = engine.ocr_runs().since(&runs_start);
        writeln!(
            out,
            "{file}\t{}\t{exact}/{listed}\t{}\t{:.0}\t{}\t{:.0}\t{}\t{:.0}\t{}",
            if scan.as_ref().and_then(|s| s.source) == Some(layout) { "yes" } else { "no" },
            if checks_passed { "yes" } else { "no" },
            cpu_times.last().copied().unwrap_or(0.0),
            runs.detector_runs,
            runs.detector_cpu_ms,
            runs.recognizer_runs,
            runs.recognizer_cpu_ms,
            missed.join(","),
        )?;
    }
    for name in VIZ_FIELDS {
        if let Some((ok, n)) = per_field.get(name) {
            writeln!(out, "field {name}: {ok}/{n} exact")?;
        }
    }
    let runs = engine.ocr_runs().since(&runs_before);
    let scans = cpu_times.len().max(1) as f64;
    writeln!(
        out,
        "per scan (mean): cpu_ms={:.0} detector_runs={:.2} detector_cpu_ms={:.0} lines_recognized={:.1} \
         recognizer_cpu_ms={:.0}",
        cpu_times.iter().sum::<f64>() / scans,
        runs.detector_runs as f64 / scans,
        runs.detector_cpu_ms / scans,
        runs.recognizer_runs as f64 / scans,
        runs.recognizer_cpu_ms / scans,
    )?;
    let summary = VizSummary {
        documents: rows.len(),
        fields_exact: exact_total as f64 / listed_total.max(1) as f64,
        docs_all_fields: all_fields,
        false_valid,
        median_cpu_ms: median(&mut cpu_times),
    };
    writeln!(
        out,
        "fields_exact={:.3} docs_all_fields={}/{} false_valid={} median_ms={:.0}",
        summary.fields_exact,
        summary.docs_all_fields,
        summary.documents,
        summary.false_valid,
        summary.median_cpu_ms
    )?;
    Ok(summary)
}

/// Decoded text as bytes: byte-mode data comes out as ISO-8859-1 characters.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// `idverify eval pdf417 --manifest PATH/manifest.csv` (columns `image`, `payload_group`,
/// `symbols_in_group`, `expected_file`, `expected_encoding`). Multi-symbol (Macro PDF417) groups
/// are joined in segment order before comparing.
pub fn pdf417(manifest: &Path, out: &mut dyn Write) -> Result<CountSummary, EvalError> {
    let (headers, rows) = read_manifest(manifest)?;
    let image_col = column(manifest, &headers, "image")?;
    let group_col = column(manifest, &headers, "payload_group")?;
    let count_col = column(manifest, &headers, "symbols_in_group")?;
    let expected_col = column(manifest, &headers, "expected_file")?;
    let encoding_col = column(manifest, &headers, "expected_encoding")?;
    let dir = base_dir(manifest);
    let mut decoded: Vec<Vec<barcode::Pdf417Symbol>> = Vec::new();
    let mut times = Vec::new();
    for row in &rows {
        let started = Instant::now();
        let in_group: usize = row[count_col].parse().unwrap_or(1);
        let symbols = match image::open(dir.join(&row[image_col])) {
            // Pages of a multi-symbol set may hold several symbols each.
            Ok(i) if in_group > 1 => barcode::decode_pdf417_all(&i.to_rgb8()),
            Ok(i) => barcode::decode_pdf417_symbol(&i.to_rgb8()).into_iter().collect(),
            Err(_) => Vec::new(),
        };
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        decoded.push(symbols);
    }
    let mut ok = 0;
    writeln!(out, "image\tdecoded\tms")?;
    for (i, row) in rows.iter().enumerate() {
        let expected = std::fs::read(dir.join(&row[expected_col])).unwrap_or_default();
        let binary = row[encoding_col].contains("raw bytes");
        let in_group: usize = row[count_col].parse().unwrap_or(1);
        let text = if in_group > 1 {
            // Join every segment found on the group's pages, in segment order, once each.
            let mut parts: Vec<&barcode::Pdf417Symbol> = rows
                .iter()
                .enumerate()
                .filter(|(_, other)| other[group_col] == row[group_col])
                .flat_map(|(j, _)| decoded[j].iter())
                .collect();
            parts.sort_by_key(|s| s.segment_index.unwrap_or(usize::MAX));
            parts.dedup_by_key(|s| s.segment_index);
            (!parts.is_empty()).then(|| parts.iter().map(|s| s.text.as_str()).collect::<String>())
        } else {
            decoded[i].first().map(|s| s.text.clone())
        };
        let matches = match &text {
            Some(t) if binary => latin1_bytes(t).is_some_and(|b| b == expected),
            Some(t) => t.as_bytes() == expected.as_slice(),
            None => false,
        };
        ok += usize::from(matches);
        writeln!(out, "{}\t{}\t{:.0}", row[image_col], if matches { "yes" } else { "no" }, times[i])?;
    }
    writeln!(out, "decoded={ok}/{}", rows.len())?;
    Ok(CountSummary { ok, total: rows.len() })
}

/// Whether a parsed licence has what identity checks need: a name, the licence number, and birth
/// and expiry dates that exist, agree with the raw elements, and are in a plausible order.
pub fn aamva_complete(record: &aamva::AamvaRecord) -> bool {
    let (Some(birth), Some(expiry)) = (record.birth_date, record.expiry_date) else { return false };
    let raw_number = record.elements.get("DAQ").map(|v| v.trim());
    record.last_name.is_some()
        && record.first_name.is_some()
        && record.document_number.is_some()
        && record.document_number.as_deref().map(str::trim) == raw_number
        && birth <= expiry
        && birth > NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default()
}

/// `idverify eval aamva --manifest PATH/manifest.csv` (column `file`). The manifest carries no
/// expected field values, so "parsed" means [`aamva_complete`]; exact values are unit-tested.
pub fn aamva(manifest: &Path, out: &mut dyn Write) -> Result<CountSummary, EvalError> {
    let (headers, rows) = read_manifest(manifest)?;
    let file_col = column(manifest, &headers, "file")?;
    let dir = base_dir(manifest);
    let today = chrono::Local::now().date_naive();
    let mut ok = 0;
    let mut versions: HashMap<u8, usize> = HashMap::new();
    writeln!(out, "file\tversion\tparsed")?;
    for row in &rows {
        let file = &row[file_col];
        let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let (version, parsed) = match aamva::parse(&text, today) {
            Ok(r) => {
                *versions.entry(r.version).or_default() += 1;
                (r.version.to_string(), aamva_complete(&r))
            }
            Err(_) => ("-".into(), false),
        };
        ok += usize::from(parsed);
        writeln!(out, "{file}\t{version}\t{}", if parsed { "yes" } else { "no" })?;
    }
    let mut v: Vec<_> = versions.into_iter().collect();
    v.sort();
    writeln!(out, "versions={v:?}")?;
    writeln!(out, "parsed={ok}/{}", rows.len())?;
    Ok(CountSummary { ok, total: rows.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("ABC", "ABC"), 0);
        assert_eq!(edit_distance("ABC", "AXC"), 1);
        assert_eq!(edit_distance("ABC", ""), 3);
        assert_eq!(edit_distance("<<A", "<A"), 1);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
