//! API key format, generation and hashing.
//!
//! A key looks like `idv_<prefix>_<secret>`: `prefix` is 12 lowercase hex characters (48 random bits,
//! stored in clear and indexed, used only to find the row), `secret` is 64 lowercase hex characters
//! (256 random bits from the OS RNG). Only SHA-256(secret) is stored; a slow hash is unnecessary for
//! secrets of this entropy.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::StoreError;

pub(crate) const KEY_TAG: &str = "idv_";
pub(crate) const PREFIX_BYTES: usize = 6;
pub(crate) const SECRET_BYTES: usize = 32;
const PREFIX_HEX: usize = PREFIX_BYTES * 2;
const SECRET_HEX: usize = SECRET_BYTES * 2;
pub(crate) const KEY_LEN: usize = KEY_TAG.len() + PREFIX_HEX + 1 + SECRET_HEX;

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("OS random number generator: {e}")))?;
    Ok(bytes)
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0x0f) as usize] as char);
    }
    out
}

/// Random identifier like `org_3f9a...` (96 bits).
pub(crate) fn random_id(tag: &str) -> Result<String, StoreError> {
    Ok(format!("{tag}_{}", to_hex(&random_bytes::<12>()?)))
}

pub(crate) struct GeneratedKey {
    pub full: String,
    pub prefix: String,
    pub secret_hash: [u8; 32],
}

pub(crate) fn generate_key() -> Result<GeneratedKey, StoreError> {
    let prefix = to_hex(&random_bytes::<PREFIX_BYTES>()?);
    let secret = to_hex(&random_bytes::<SECRET_BYTES>()?);
    let secret_hash = hash_secret(&secret);
    Ok(GeneratedKey { full: format!("{KEY_TAG}{prefix}_{secret}"), prefix, secret_hash })
}

pub(crate) fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits a presented key into (prefix, secret); `None` if it is not exactly our format.
pub(crate) fn parse_key(presented: &str) -> Option<(&str, &str)> {
    // ASCII first: the byte-index splits below must fall on char boundaries.
    if !presented.is_ascii() || presented.len() != KEY_LEN || !presented.starts_with(KEY_TAG) {
        return None;
    }
    let rest = &presented[KEY_TAG.len()..];
    let (prefix, secret) = rest.split_at(PREFIX_HEX);
    let secret = secret.strip_prefix('_')?;
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (prefix.len() == PREFIX_HEX && secret.len() == SECRET_HEX && lower_hex(prefix) && lower_hex(secret))
        .then_some((prefix, secret))
}

/// Constant-time comparison of a computed hash with a stored one (any length).
pub(crate) fn hashes_equal(computed: &[u8; 32], stored: &[u8]) -> bool {
    stored.len() == computed.len() && bool::from(computed.as_slice().ct_eq(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_parses_and_hashes() {
        let key = generate_key().unwrap();
        assert_eq!(key.full.len(), KEY_LEN);
        let (prefix, secret) = parse_key(&key.full).unwrap();
        assert_eq!(prefix, key.prefix);
        assert!(hashes_equal(&hash_secret(secret), &key.secret_hash));
        assert!(!hashes_equal(&hash_secret("other"), &key.secret_hash));
        assert!(!hashes_equal(&hash_secret(secret), &key.secret_hash[..31]));
    }

    #[test]
    fn keys_are_distinct() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a.full, b.full);
        assert_ne!(a.prefix, b.prefix);
    }

    #[test]
    fn malformed_keys_rejected() {
        let good = format!("idv_{}_{}", "a".repeat(12), "0".repeat(64));
        assert!(parse_key(&good).is_some());
        for bad in [
            String::new(),
            "idv_".to_string(),
            good.to_uppercase(),
            good.replacen("idv_", "idx_", 1),
            format!("idv_{}_{}", "a".repeat(12), "g".repeat(64)),
            format!("idv_{}-{}", "a".repeat(12), "0".repeat(64)),
            format!("idv_{}_{}", "a".repeat(11), "0".repeat(65)),
            format!("{good}0"),
            format!("idv_{}_{}é", "a".repeat(12), "0".repeat(62)),
        ] {
            assert!(parse_key(&bad).is_none(), "accepted {bad:?}");
        }
    }

    #[test]
    fn hex_is_exact() {
        assert_eq!(to_hex(&[0x00, 0xff, 0x1a]), "00ff1a");
    }
}
