//! ID token signing keys: made with aws-lc-rs (RSA 2048, P-256 or Ed25519), kept in the store so that every
//! instance and every restart signs with the same key, published as a JWK Set. A rotation makes a new
//! current key and keeps the old one published until the ID tokens it signed have expired, so relying
//! parties holding a cached JWKS meet the new `kid`, fetch the set again, and verify both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::domain::oidc::{SigningAlgorithm, SigningKeyRecord};
use crate::store::{SharedStore, StoreError};

/// Retired keys stay published this long beyond the longest ID token lifetime (clock differences, caches).
const PUBLICATION_MARGIN: Duration = Duration::minutes(5);

/// The key new ID tokens are signed with.
#[derive(Clone)]
pub struct ActiveKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub key: Arc<EncodingKey>,
}

impl ActiveKey {
    pub fn jwt_algorithm(&self) -> Algorithm {
        jwt_algorithm(self.algorithm)
    }
}

pub fn jwt_algorithm(algorithm: SigningAlgorithm) -> Algorithm {
    match algorithm {
        SigningAlgorithm::Rs256 => Algorithm::RS256,
        SigningAlgorithm::Es256 => Algorithm::ES256,
        SigningAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

fn key_error(what: &str) -> StoreError {
    StoreError::Database(format!("signing key: {what}"))
}

/// Makes a new key pair and its public JWK. RSA generation takes a noticeable moment, so callers on the
/// async runtime use [`generate_off_thread`].
pub fn generate(algorithm: SigningAlgorithm, now: OffsetDateTime) -> Result<SigningKeyRecord, StoreError> {
    let kid = crate::random::url_token(12);
    let failed = || key_error("could not generate a key");
    let (pkcs8, jwk) = match algorithm {
        SigningAlgorithm::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| failed())?;
            let der = pair.as_der().map_err(|_| failed())?;
            let public = pair.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            (der.as_ref().to_vec(), jwk)
        }
        SigningAlgorithm::Es256 => {
            let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| failed())?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref()).map_err(|_| failed())?;
            // An uncompressed P-256 point: 0x04, then 32 bytes of x and 32 of y.
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(failed());
            }
            let jwk = json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            });
            (document.as_ref().to_vec(), jwk)
        }
        SigningAlgorithm::EdDsa => {
            let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| failed())?;
            let pair = Ed25519KeyPair::from_pkcs8(document.as_ref()).map_err(|_| failed())?;
            let jwk = json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (document.as_ref().to_vec(), jwk)
        }
    };
    let mut jwk = jwk;
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk["alg"] = json!(algorithm.as_str());
    Ok(SigningKeyRecord {
        kid,
        algorithm,
        private_pkcs8: STANDARD.encode(pkcs8),
        public_jwk: jwk.to_string(),
        created_at: now,
        retired_at: None,
    })
}

pub async fn generate_off_thread(
    algorithm: SigningAlgorithm,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, StoreError> {
    tokio::task::spawn_blocking(move || generate(algorithm, now))
        .await
        .map_err(|_| key_error("key generation was interrupted"))?
}

/// Makes a new key of `algorithm` the current one, retiring the current key. Returns the new key.
pub async fn rotate(
    store: &SharedStore,
    algorithm: SigningAlgorithm,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, StoreError> {
    let keys = store.signing_keys().await?;
    let current = keys.iter().find(|k| k.retired_at.is_none()).map(|k| k.kid.clone());
    let key = generate_off_thread(algorithm, now).await?;
    store.add_signing_key(&key, current.as_deref()).await?;
    Ok(key)
}

/// The signing keys as the provider uses them: the current key (made on first use, or when the configured
/// algorithm changes), and the public keys to publish. Private keys are parsed once per key id.
#[derive(Clone)]
pub struct SigningKeys {
    store: SharedStore,
    algorithm: SigningAlgorithm,
    /// How long retired keys stay published: the ID token lifetime plus a margin.
    publish_retired_for: Duration,
    parsed: Arc<Mutex<HashMap<String, Arc<EncodingKey>>>>,
    /// Set once this process has made sure the current key has the configured algorithm. Only the first
    /// signature after start may rotate for that: two instances configured differently (during a rolling
    /// change) then rotate once each instead of on every request.
    algorithm_settled: Arc<std::sync::atomic::AtomicBool>,
}

impl SigningKeys {
    pub fn new(store: SharedStore, algorithm: SigningAlgorithm, id_token_lifetime: std::time::Duration) -> Self {
        let lifetime = Duration::try_from(id_token_lifetime).unwrap_or(Duration::hours(1));
        Self {
            store,
            algorithm,
            publish_retired_for: lifetime + PUBLICATION_MARGIN,
            parsed: Arc::default(),
            algorithm_settled: Arc::default(),
        }
    }

    /// The key to sign with now. Read from the store on every call (one small indexed read), so a rotation
    /// by `gatehouse keys rotate` or another instance is used at once. Made when there is none; replaced by
    /// one of the configured algorithm on the first call after start if it has another.
    pub async fn current(&self, now: OffsetDateTime) -> Result<ActiveKey, StoreError> {
        for _ in 0..3 {
            let keys = self.store.signing_keys().await?;
            let current = keys.iter().find(|k| k.retired_at.is_none());
            let settled = self.algorithm_settled.load(std::sync::atomic::Ordering::Relaxed);
            match current {
                Some(key) if key.algorithm == self.algorithm || settled => {
                    self.algorithm_settled.store(true, std::sync::atomic::Ordering::Relaxed);
                    return self.activate(key);
                }
                _ => {
                    let replaces = current.map(|k| k.kid.clone());
                    let key = generate_off_thread(self.algorithm, now).await?;
                    match self.store.add_signing_key(&key, replaces.as_deref()).await {
                        Ok(()) => {
                            tracing::info!(kid = %key.kid, algorithm = key.algorithm.as_str(), "new ID token signing key");
                            self.algorithm_settled.store(true, std::sync::atomic::Ordering::Relaxed);
                            return self.activate(&key);
                        }
                        // Another instance made one at the same moment: use theirs (settled, so this process
                        // does not rotate again).
                        Err(StoreError::Conflict(_)) => {
                            self.algorithm_settled.store(true, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        Err(err) => return Err(err),
                    }
                }
            }
        }
        Err(key_error("could not agree on a current key"))
    }

    /// The public keys relying parties may meet: the current one and those retired less than an ID token
    /// lifetime ago. Makes the first key if there is none yet, so a client that fetches the set before any
    /// sign-in can verify the first ID token without fetching again. One read of the store in the usual case.
    pub async fn published(&self, now: OffsetDateTime) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut keys = self.store.signing_keys().await?;
        if !keys.iter().any(|k| k.retired_at.is_none()) {
            self.current(now).await?;
            keys = self.store.signing_keys().await?;
        }
        keys.iter()
            .filter(|k| k.retired_at.is_none_or(|retired| retired + self.publish_retired_for > now))
            .map(|k| serde_json::from_str(&k.public_jwk).map_err(|_| key_error("stored public key is not JSON")))
            .collect()
    }

    /// When retired keys can no longer be needed (for the sweep).
    pub fn retired_keys_expire_before(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.publish_retired_for
    }

    fn activate(&self, record: &SigningKeyRecord) -> Result<ActiveKey, StoreError> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        let key = match parsed.get(&record.kid) {
            Some(key) => key.clone(),
            None => {
                let key = Arc::new(encoding_key(record)?);
                parsed.insert(record.kid.clone(), key.clone());
                key
            }
        };
        Ok(ActiveKey { kid: record.kid.clone(), algorithm: record.algorithm, key })
    }
}

/// jsonwebtoken's key for a stored PKCS#8 key. Its RSA signer wants PKCS#1, which it extracts from PEM.
fn encoding_key(record: &SigningKeyRecord) -> Result<EncodingKey, StoreError> {
    let der = STANDARD.decode(&record.private_pkcs8).map_err(|_| key_error("stored private key is not base64"))?;
    match record.algorithm {
        SigningAlgorithm::Rs256 => {
            let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(&der));
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| key_error("stored RSA key is invalid"))
        }
        SigningAlgorithm::Es256 => Ok(EncodingKey::from_ec_der(&der)),
        SigningAlgorithm::EdDsa => Ok(EncodingKey::from_ed_der(&der)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Header, Validation};

    #[test]
    fn every_algorithm_signs_what_its_published_jwk_verifies() {
        let now = OffsetDateTime::now_utc();
        for algorithm in SigningAlgorithm::ALL {
            let record = generate(algorithm, now).unwrap();
            let key = encoding_key(&record).unwrap();
            let mut header = Header::new(jwt_algorithm(algorithm));
            header.kid = Some(record.kid.clone());
            let claims = json!({ "sub": "someone", "exp": now.unix_timestamp() + 60 });
            let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
            let jwk: Jwk = serde_json::from_str(&record.public_jwk).unwrap();
            assert_eq!(jwk.common.key_id.as_deref(), Some(record.kid.as_str()));
            let decoding = DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = Validation::new(jwt_algorithm(algorithm));
            validation.validate_aud = false;
            let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(decoded.claims["sub"], "someone", "{algorithm:?}");
            // A key of another generation does not verify it.
            let other: Jwk = serde_json::from_str(&generate(algorithm, now).unwrap().public_jwk).unwrap();
            let other = DecodingKey::from_jwk(&other).unwrap();
            assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &other, &validation).is_err());
            assert!(!format!("{record:?}").contains(&record.private_pkcs8), "Debug hides the private key");
        }
    }
}
