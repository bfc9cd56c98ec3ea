//! Idempotency records: claiming a key, storing the response for replay, releasing the key after
//! a failure, and sweeping expired records.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::Row;

use crate::{BeginWrite, Store, StoreError, on_backend, org_not_found, require_text};

/// Idempotency records are kept (and replayed) for this long after the request started.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// How often expired idempotency records are swept (piggy-backed on `idempotency_begin`).
const PURGE_INTERVAL_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This caller owns the key: run the request, then complete or abandon.
    Started,
    /// Another request with this key is running.
    InProgress,
    /// Already completed: send this response again.
    Replay(StoredResponse),
    /// Same key, different request fingerprint.
    Mismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The `x-request-id` the answer was first sent with.
    pub request_id: String,
}

impl Store {
    /// Claims idempotency key `key` for this organization (see the crate docs for the states).
    pub async fn idempotency_begin(
        &self,
        org_id: &str,
        key: &str,
        fingerprint: &str,
        stale_after: Duration,
    ) -> Result<IdempotencyBegin, StoreError> {
        require_text("idempotency key", key)?;
        require_text("request fingerprint", fingerprint)?;
        let now = self.now_ms();
        self.purge_expired_now_and_then(now).await;
        // The claim and the read are separate statements; a record deleted in between
        // (abandon, purge) just means we try to claim again.
        for _ in 0..3 {
            let claimed: Option<IdempotencyBegin> = on_backend!(self, pool, d => {
                let claimed = sqlx::query(d.sql(
                    "INSERT INTO idempotency (org_id, idem_key, fingerprint, state, \
                         created_at_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, 'in_progress', $4, $5) \
                     ON CONFLICT (org_id, idem_key) DO UPDATE SET \
                         fingerprint = EXCLUDED.fingerprint, state = 'in_progress', \
                         status = NULL, content_type = NULL, body = NULL, request_id = NULL, \
                         created_at_ms = EXCLUDED.created_at_ms, \
                         expires_at_ms = EXCLUDED.expires_at_ms \
                     WHERE idempotency.expires_at_ms <= $4 \
                        OR (idempotency.state = 'in_progress' AND idempotency.created_at_ms <= $6) \
                     RETURNING org_id",
                ))
                .bind(org_id)
                .bind(key)
                .bind(fingerprint)
                .bind(now)
                .bind(now.saturating_add(IDEMPOTENCY_TTL_MS))
                .bind(now.saturating_sub(i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX)))
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from)
                .map_err(|e| match e {
                    StoreError::NotFound(_) => org_not_found(),
                    other => other,
                })?;
                if claimed.is_some() {
                    Some(IdempotencyBegin::Started)
                } else {
                    let row = sqlx::query(d.sql(
                        "SELECT fingerprint, state, status, content_type, body, request_id \
                         FROM idempotency WHERE org_id = $1 AND idem_key = $2",
                    ))
                    .bind(org_id)
                    .bind(key)
                    .fetch_optional(pool)
                    .await?;
                    match row {
                        None => None,
                        Some(row) => {
                            let stored_fingerprint: String = row.try_get(0)?;
                            let state: String = row.try_get(1)?;
                            if stored_fingerprint != fingerprint {
                                Some(IdempotencyBegin::Mismatch)
                            } else if state == "done" {
                                let status: Option<i64> = row.try_get(2)?;
                                Some(IdempotencyBegin::Replay(StoredResponse {
                                    status: status
                                        .and_then(|s| u16::try_from(s).ok())
                                        .unwrap_or(500),
                                    content_type: row
                                        .try_get::<Option<String>, _>(3)?
                                        .unwrap_or_default(),
                                    body: row.try_get::<Option<Vec<u8>>, _>(4)?.unwrap_or_default(),
                                    request_id: row
                                        .try_get::<Option<String>, _>(5)?
                                        .unwrap_or_default(),
                                }))
                            } else {
                                Some(IdempotencyBegin::InProgress)
                            }
                        }
                    }
                }
            });
            if let Some(outcome) = claimed {
                return Ok(outcome);
            }
        }
        Ok(IdempotencyBegin::InProgress)
    }

    /// Stores the response of a request started with `idempotency_begin`, for replay, and in the
    /// same transaction captures the charge reserved under `response.request_id`: a stored answer
    /// can always be fetched again with the key, so it counts as delivered. Both or neither, so a
    /// process that dies here leaves either a paid answer to replay or a refund and a key to retry.
    /// `NotFound` if this caller no longer holds the key (abandoned, expired or taken over).
    pub async fn idempotency_complete(
        &self,
        org_id: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        on_backend!(self, pool, d => {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(d.sql(
                "UPDATE idempotency SET state = 'done', status = $3, content_type = $4, body = $5, \
                 request_id = $6 \
                 WHERE org_id = $1 AND idem_key = $2 AND state = 'in_progress'",
            ))
            .bind(org_id)
            .bind(key)
            .bind(i64::from(response.status))
            .bind(&response.content_type)
            .bind(&response.body[..])
            .bind(&response.request_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("in-progress idempotency record".into()));
            }
            sqlx::query(d.sql("DELETE FROM reservations WHERE org_id = $1 AND request_id = $2"))
                .bind(org_id)
                .bind(&response.request_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Releases an in-progress key (after a 5xx) so that a retry may run.
    pub async fn idempotency_abandon(&self, org_id: &str, key: &str) -> Result<(), StoreError> {
        on_backend!(self, pool, d => {
            sqlx::query(d.sql(
                "DELETE FROM idempotency WHERE org_id = $1 AND idem_key = $2 \
                 AND state = 'in_progress'",
            ))
            .bind(org_id)
            .bind(key)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Deletes expired idempotency records; returns how many. Also runs by itself every
    /// 10 minutes from `idempotency_begin`.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let done = sqlx::query(d.sql("DELETE FROM idempotency WHERE expires_at_ms <= $1"))
                .bind(now)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    async fn purge_expired_now_and_then(&self, now: i64) {
        let last = self.inner.last_purge_ms.load(Ordering::Relaxed);
        if now - last < PURGE_INTERVAL_MS
            || self
                .inner
                .last_purge_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.purge_expired().await {
            tracing::warn!(error = %e, "could not purge expired idempotency records");
        }
    }
}
