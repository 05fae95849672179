//! `cargo fuzz run oidc_request`: see `checks::oidc_request` for what is checked.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::oidc_request(data));
