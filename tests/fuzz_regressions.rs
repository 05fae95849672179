//! Every saved fuzzing input (fuzz/seeds/ and fuzz/regressions/) through the same checks the fuzz targets
//! run (fuzz/checks.rs), in the normal suite: an input that once broke a property stays tested without a
//! nightly toolchain or libFuzzer. See fuzz/README.md.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn run_saved_inputs(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for folder in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let data = std::fs::read(entry.path()).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails its check", entry.path().display());
            count += 1;
        }
    }
    assert!(count > 0, "no saved inputs for {target}");
}

#[test]
fn canonical_request() {
    run_saved_inputs("canonical_request", checks::canonical_request);
}

#[test]
fn cookies() {
    run_saved_inputs("cookies", checks::cookies);
}

#[test]
fn forms() {
    run_saved_inputs("forms", checks::forms);
}

#[test]
fn return_path() {
    run_saved_inputs("return_path", checks::return_path);
}

#[test]
fn oidc_request() {
    run_saved_inputs("oidc_request", checks::oidc_request);
}

#[test]
fn config() {
    run_saved_inputs("config", checks::config);
}

#[test]
fn import() {
    run_saved_inputs("import", checks::import);
}
