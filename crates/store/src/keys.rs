//! API keys: their format, generation and hashing, and storing, listing, revoking and
//! authenticating them.
//!
//! A key looks like `idv_<prefix>_<secret>`: `prefix` is 12 lowercase hex characters (48 random bits,
//! stored in clear and indexed, used only to find the row), `secret` is 64 lowercase hex characters
//! (256 random bits from the OS RNG). Only SHA-256(secret) is stored; a slow hash is unnecessary for
//! secrets of this entropy.

use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::{Store, StoreError, millis_to_time, on_backend, org_not_found, require_text};

pub(crate) const KEY_TAG: &str = "idv_";
pub(crate) const PREFIX_BYTES: usize = 6;
pub(crate) const SECRET_BYTES: usize = 32;
const PREFIX_HEX: usize = PREFIX_BYTES * 2;
const SECRET_HEX: usize = SECRET_BYTES * 2;
pub(crate) const KEY_LEN: usize = KEY_TAG.len() + PREFIX_HEX + 1 + SECRET_HEX;

/// `last_used_at` is only rewritten when older than this (saves a write per request).
const LAST_USED_THROTTLE_MS: i64 = 60 * 1000;

/// A freshly created key. `secret` is the full key to hand to the client; it is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub key_id: String,
    /// Full key, `idv_<prefix>_<secret>`.
    pub secret: String,
    pub prefix: String,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who an authenticated API key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub org_id: String,
    pub org_name: String,
    pub key_id: String,
}

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

impl Store {
    /// Creates an API key. The returned `secret` is the only time the full key is available.
    pub async fn create_key(&self, org_id: &str, key_name: &str) -> Result<NewApiKey, StoreError> {
        require_text("key name", key_name)?;
        let now = self.now_ms();
        // A 48-bit prefix collision is very unlikely; retry a few times rather than fail.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let key_id = random_id("key")?;
            let generated = generate_key()?;
            let inserted: Result<(), StoreError> = on_backend!(self, pool, d => async {
                sqlx::query(d.sql(
                    "INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                ))
                .bind(&key_id)
                .bind(org_id)
                .bind(key_name)
                .bind(&generated.prefix)
                .bind(&generated.secret_hash[..])
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            }.await);
            match inserted {
                Ok(()) => {
                    return Ok(NewApiKey { key_id, secret: generated.full, prefix: generated.prefix });
                }
                Err(StoreError::NotFound(_)) => return Err(org_not_found()),
                Err(StoreError::Conflict(_)) if attempts < 4 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// All keys of an organization (revoked ones included), oldest first. Never returns secrets.
    pub async fn list_keys(&self, org_id: &str) -> Result<Vec<ApiKeyInfo>, StoreError> {
        if !self.org_exists(org_id).await? {
            return Err(org_not_found());
        }
        on_backend!(self, pool, d => {
            let rows = sqlx::query(d.sql(
                "SELECT id, name, prefix, created_at_ms, last_used_at_ms, revoked_at_ms \
                 FROM api_keys WHERE org_id = $1 ORDER BY created_at_ms, id",
            ))
            .bind(org_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let revoked_at: Option<i64> = row.try_get(5)?;
                    Ok(ApiKeyInfo {
                        key_id: row.try_get(0)?,
                        name: row.try_get(1)?,
                        prefix: row.try_get(2)?,
                        created_at: millis_to_time(row.try_get(3)?),
                        last_used_at: row.try_get::<Option<i64>, _>(4)?.map(millis_to_time),
                        revoked: revoked_at.is_some(),
                        revoked_at: revoked_at.map(millis_to_time),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// Revokes a key; `false` if it does not exist or was already revoked.
    pub async fn revoke_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let done = sqlx::query(d.sql(
                "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
            ))
            .bind(key_id)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Resolves a presented API key. Missing, malformed, unknown, wrong and revoked keys are all
    /// `Ok(None)`; only database trouble is an error.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        static DUMMY_HASH: LazyLock<[u8; 32]> = LazyLock::new(|| hash_secret("idverify-dummy-secret"));
        let Some((prefix, secret)) = parse_key(presented) else {
            // Same hashing work as a real check; the format itself is public, so no DB lookup.
            let _ = hashes_equal(&hash_secret(presented), &DUMMY_HASH[..]);
            return Ok(None);
        };
        let computed = hash_secret(secret);
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let row = sqlx::query(d.sql(
                "SELECT k.id, k.org_id, o.name, k.secret_hash, k.revoked_at_ms, k.last_used_at_ms \
                 FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE k.prefix = $1",
            ))
            .bind(prefix)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                let _ = hashes_equal(&computed, &DUMMY_HASH[..]);
                return Ok(None);
            };
            let stored: Vec<u8> = row.try_get(3)?;
            let matches = hashes_equal(&computed, &stored);
            let revoked: Option<i64> = row.try_get(4)?;
            if !matches || revoked.is_some() {
                return Ok(None);
            }
            let key_id: String = row.try_get(0)?;
            let last_used: Option<i64> = row.try_get(5)?;
            if last_used.is_none_or(|t| now - t >= LAST_USED_THROTTLE_MS) {
                // Bookkeeping only: a failure here must not reject a valid key.
                let update = sqlx::query(d.sql(
                    "UPDATE api_keys SET last_used_at_ms = $2 WHERE id = $1",
                ))
                .bind(&key_id)
                .bind(now)
                .execute(pool)
                .await;
                if let Err(e) = update {
                    tracing::warn!(error = %e, "could not record API key use");
                }
            }
            Ok(Some(Principal {
                org_id: row.try_get(1)?,
                org_name: row.try_get(2)?,
                key_id,
            }))
        })
    }
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
    fn secret_not_in_debug() {
        let key =
            NewApiKey { key_id: "key_1".into(), secret: "idv_abc_supersecret".into(), prefix: "abc".into() };
        assert!(!format!("{key:?}").contains("supersecret"));
    }

    #[test]
    fn hex_is_exact() {
        assert_eq!(to_hex(&[0x00, 0xff, 0x1a]), "00ff1a");
    }
}
