//! Random identifiers and secrets, all from the operating system's CSPRNG (through `rand`'s `OsRng`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;

/// `bytes` random bytes.
pub fn bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    // The OS random source failing is not something a server can continue from safely.
    OsRng.try_fill_bytes(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// `len` random bytes as lower-case hex (identifiers that appear in URLs and logs).
pub fn hex_token(len: usize) -> String {
    hex::encode(bytes(len))
}

/// `len` random bytes as unpadded base64url (secrets in cookies and links).
pub fn url_token(len: usize) -> String {
    URL_SAFE_NO_PAD.encode(bytes(len))
}

/// A uniformly random number in `0..bound` (no modulo bias), e.g. a 6-digit code.
pub fn below(bound: u32) -> u32 {
    use rand::Rng;
    assert!(bound > 0, "an empty range has no random member");
    OsRng.unwrap_err().random_range(0..bound)
}
