//! `cargo fuzz run canonical_request`: see `checks::canonical_request` for what is checked.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::canonical_request(data));
