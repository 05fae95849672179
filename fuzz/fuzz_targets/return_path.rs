//! `cargo fuzz run return_path`: see `checks::return_path` for what is checked.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::return_path(data));
