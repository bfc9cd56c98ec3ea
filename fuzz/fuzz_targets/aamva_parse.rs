//! AAMVA driver's-licence barcode payloads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
    let _ = idverify_document::aamva::parse(text, today);
});
