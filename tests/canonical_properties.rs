//! Properties of the canonical request form, over generated hosts and paths built from the pieces attackers
//! use (dot segments, escapes of every kind, backslashes, `;parameters`, capitals, repeated slashes):
//!
//! - a canonical form is a fixed point (canonicalising again changes nothing);
//! - for any path Gatehouse accepts, an app that reads the *raw* path the way most servers do
//!   (percent-decode, resolve dot segments, merge slashes) reads exactly the path Gatehouse judged and
//!   forwarded: the rewrite never changes which resource an app sees, and what is judged is what is
//!   forwarded;
//! - decoding a canonical path never moves a segment boundary, so apps that route on raw text and apps that
//!   route on decoded text see the same segments;
//! - every accepted host is `name[:port]` in lower case, without a trailing dot or leading zeros.

#[path = "../fuzz/checks.rs"]
mod checks;

use gatehouse::domain::request_target::{canonical_host, canonical_path};
use proptest::prelude::*;

fn path_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_~-]{1,6}",
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just(".%2e".to_owned()),
        Just("%2f".to_owned()),
        Just("%2F".to_owned()),
        Just("%5c".to_owned()),
        Just("\\".to_owned()),
        Just("..;".to_owned()),
        Just(";x=1".to_owned()),
        Just("%3b".to_owned()),
        Just("%61dmin".to_owned()),
        Just("admin".to_owned()),
        Just("ADMIN".to_owned()),
        Just("%25".to_owned()),
        Just("%252e".to_owned()),
        Just("%ff".to_owned()),
        Just("%c0%ae".to_owned()),
        Just("%c3%a9".to_owned()),
        Just("%20".to_owned()),
        Just("%00".to_owned()),
        Just("%".to_owned()),
        Just("\"".to_owned()),
        Just("".to_owned()),
        any::<u8>().prop_map(|byte| format!("%{byte:02x}")),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("apps.example.com".to_owned()),
        Just("ops.example.com".to_owned()),
        Just("OPS.Example.com.:08443".to_owned()),
        Just("ops.example.com:abc".to_owned()),
        "[a-zA-Z0-9.:_-]{0,24}",
    ]
}

fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::collection::vec(path_piece(), 0..3).prop_map(|p| p.concat()), 0..7)
        .prop_map(|segments| format!("/{}", segments.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn accepted_paths_reach_the_app_as_they_were_judged(host in host(), raw in raw_path()) {
        // The fuzz target's check (fuzz/checks.rs): fixed point, what decoding apps read of the raw and of the
        // forwarded path equals what was judged, no moved segment boundary, never looser than a decoding judge.
        checks::canonical_request(format!("{host}\0{raw}").as_bytes());
    }

    #[test]
    fn every_byte_string_is_canonical_refused_or_rewritten_without_panicking(raw in "/[ -~]{0,40}") {
        if let Ok(canonical) = canonical_path(&raw) {
            prop_assert_eq!(canonical_path(&canonical).unwrap(), canonical.clone());
        }
    }

    #[test]
    fn accepted_hosts_are_name_and_port_in_one_form(
        name in prop_oneof!["[a-zA-Z0-9._-]{0,20}", "\\[[0-9a-fA-F:.]{0,20}\\]", "[ -~]{0,12}"],
        dot in any::<bool>(),
        port in prop::option::of(prop_oneof!["[0-9]{0,6}", "[ -~]{0,4}"]),
    ) {
        let raw = format!("{name}{}{}", if dot { "." } else { "" }, port.map(|p| format!(":{p}")).unwrap_or_default());
        let Ok(form) = canonical_host(&raw) else { return Ok(()) };
        let text = form.text.clone().into_owned();
        prop_assert_eq!(canonical_host(&text).unwrap().text.into_owned(), text.clone());
        let host_name = form.name();
        prop_assert!(!host_name.ends_with('.'));
        prop_assert!(!host_name.bytes().any(|b| b.is_ascii_uppercase()));
        match &text[form.name_len..] {
            "" => {}
            rest => {
                let digits = rest.strip_prefix(':').expect("a port follows a colon");
                prop_assert!(!digits.starts_with('0'));
                let value: u32 = digits.parse().unwrap();
                prop_assert!((1..=65535).contains(&value));
            }
        }
    }
}
