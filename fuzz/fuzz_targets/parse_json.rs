//! JSON request bodies: any bytes give fields or a documented 400, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = idverify::http::input::parse_json(data) {
        assert!(matches!(e.code(), "invalid_json" | "duplicate_field" | "invalid_field"), "{}", e.code());
    }
});
