//! MRZ parsing: the input is split into lines (2 or 3 for TD1/TD2/TD3).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines: Vec<&str> = text.lines().take(4).collect();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
    let _ = idverify_document::mrz::parse(&lines, today);
});
