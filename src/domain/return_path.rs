//! The `rd` return path after sign-in. Only same-origin paths are accepted; anything that a browser could
//! resolve to another host (`//evil.com`, `/\evil.com`, `https:evil.com`, their percent-encoded forms,
//! control characters) is replaced by `/`. This is the open-redirect defence, so it errs on the side of `/`.

use percent_encoding::percent_decode_str;

/// Returns `raw` if it is a safe same-origin path (with optional query and fragment), else `/`.
pub fn safe_return_path(raw: &str) -> String {
    if is_safe(raw) { raw.to_owned() } else { "/".to_owned() }
}

fn is_safe(raw: &str) -> bool {
    if raw.is_empty() || raw.len() > 2048 {
        return false;
    }
    // Check the text as given and every decoding of it, so that `%2F%2Fevil.com` or a double-encoded
    // backslash cannot slip past a check that only looks at one layer.
    let mut current = raw.to_owned();
    for _ in 0..4 {
        if !looks_like_local_path(&current) {
            return false;
        }
        let decoded = percent_decode_str(&current).decode_utf8_lossy().into_owned();
        if decoded == current {
            return resolves_to_same_origin(raw);
        }
        current = decoded;
    }
    false
}

fn looks_like_local_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/') | Some(b'\\'))
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Final belt and braces: resolve against a placeholder origin the way a browser would.
fn resolves_to_same_origin(path: &str) -> bool {
    let base = url::Url::parse("http://gatehouse.invalid/").expect("constant URL parses");
    match base.join(path) {
        Ok(joined) => joined.origin() == base.origin(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn keeps_local_paths() {
        for ok in ["/", "/app", "/app?x=1&y=%2F", "/a/b#frag", "/?foo=bar", "/%E2%9C%93"] {
            assert_eq!(safe_return_path(ok), ok);
        }
    }

    #[test]
    fn refuses_everything_that_leaves_the_origin() {
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https:evil.com",
            "https://evil.com",
            "http:/evil.com",
            "javascript:alert(1)",
            "/%2F%2Fevil.com",
            "%2F%2Fevil.com",
            "/%5Cevil.com",
            "/%255Cevil.com",
            "%2f%2fevil.com",
            "/%2f/evil.com",
            "/\t/evil.com",
            "/%09/evil.com",
            "/%0d%0aSet-Cookie:x=1",
            "evil.com",
            "",
            " /app",
        ] {
            assert_eq!(safe_return_path(bad), "/", "{bad:?} was accepted");
        }
    }
}
