//! Rate limits: the per-organization limit on each backend (in-process buckets for SQLite, one
//! atomic upsert for PostgreSQL) and the token-bucket arithmetic both share.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Backend, Store, StoreError, on_backend, org_not_found, sqlite_sql};

/// Token bucket: `burst` requests at once, refilled at `per_second` tokens per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatePolicy {
    pub per_second: f64,
    pub burst: u32,
}

impl RatePolicy {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(StoreError::Invalid("rate limit per_second must be a positive number".into()));
        }
        if self.burst == 0 {
            return Err(StoreError::Invalid("rate limit burst must be at least 1".into()));
        }
        Ok(())
    }
}

/// Outcome of one rate-limit check, with what the `RateLimit-*` / `Retry-After` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateDecision {
    pub allowed: bool,
    /// Bucket capacity (burst).
    pub limit: u32,
    /// Whole requests still available right now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_seconds: u64,
    /// Seconds to wait before retrying; 0 when allowed.
    pub retry_after_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BucketState {
    pub tokens: f64,
    pub updated_ms: i64,
}

/// Refills `state` up to `now_ms` and tries to take one token.
pub(crate) fn take_token(
    state: Option<BucketState>,
    policy: RatePolicy,
    now_ms: i64,
) -> (BucketState, RateDecision) {
    let burst = f64::from(policy.burst);
    let (available, updated_ms) = match state {
        None => (burst, now_ms),
        Some(s) => {
            // A clock that went backwards refills nothing rather than draining the bucket.
            let elapsed_ms = now_ms.saturating_sub(s.updated_ms).max(0);
            let refilled = s.tokens + elapsed_ms as f64 * policy.per_second / 1000.0;
            (refilled.min(burst), s.updated_ms.max(now_ms))
        }
    };
    let allowed = available >= 1.0;
    let tokens = if allowed { available - 1.0 } else { available };
    let state = BucketState { tokens, updated_ms };
    (state, decision(allowed, tokens, policy))
}

/// Builds the decision from the tokens left after this request.
pub(crate) fn decision(allowed: bool, tokens_left: f64, policy: RatePolicy) -> RateDecision {
    let burst = f64::from(policy.burst);
    let tokens_left = tokens_left.clamp(0.0, burst);
    let seconds_until = |target: f64| -> u64 {
        let missing = (target - tokens_left).max(0.0);
        // Tiny float residue (1e-9 of a token) must not add a whole second.
        let seconds = (missing / policy.per_second - 1e-9).ceil();
        if seconds.is_finite() && seconds > 0.0 { seconds as u64 } else { 0 }
    };
    RateDecision {
        allowed,
        limit: policy.burst,
        remaining: (tokens_left + 1e-9).floor() as u32,
        reset_seconds: seconds_until(burst),
        retry_after_seconds: if allowed { 0 } else { seconds_until(1.0).max(1) },
    }
}

impl Store {
    /// Sets (`Some`) or clears (`None`) the organization's own rate limit.
    pub async fn set_rate_limit(&self, org_id: &str, policy: Option<RatePolicy>) -> Result<(), StoreError> {
        if let Some(policy) = &policy {
            policy.validate()?;
        }
        on_backend!(self, pool, d => {
            let done = sqlx::query(d.sql(
                "UPDATE orgs SET rate_per_second = $2, rate_burst = $3 WHERE id = $1",
            ))
            .bind(org_id)
            .bind(policy.map(|p| p.per_second))
            .bind(policy.map(|p| i64::from(p.burst)))
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(org_not_found());
            }
            Ok(())
        })
    }

    /// Takes one token from the organization's bucket (its override, else `default_policy`).
    pub async fn check_rate_limit(
        &self,
        org_id: &str,
        default_policy: RatePolicy,
    ) -> Result<RateDecision, StoreError> {
        default_policy.validate()?;
        match &self.inner.backend {
            Backend::Sqlite(pool) => {
                let row =
                    sqlx::query(sqlite_sql("SELECT rate_per_second, rate_burst FROM orgs WHERE id = $1"))
                        .bind(org_id)
                        .fetch_optional(pool)
                        .await?
                        .ok_or_else(org_not_found)?;
                let policy = policy_from_override(row.try_get(0)?, row.try_get(1)?, default_policy);
                let now = self.now_ms();
                let mut buckets = self.inner.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let (state, decision) = take_token(buckets.get(org_id).copied(), policy, now);
                buckets.insert(org_id.to_string(), state);
                Ok(decision)
            }
            Backend::Postgres(pool) => {
                let now = (!self.inner.db_clock_for_rates).then(|| self.now_ms());
                // One statement: row lock on conflict makes refill + take atomic across replicas.
                let row = sqlx::query(
                    "WITH policy AS ( \
                         SELECT o.id, COALESCE(o.rate_per_second, $3) AS per_second, \
                                COALESCE(o.rate_burst, $4) AS burst, \
                                COALESCE($2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT) \
                                    AS now_ms \
                         FROM orgs o WHERE o.id = $1) \
                     INSERT INTO rate_buckets AS b \
                         (org_id, tokens, updated_at_ms, per_second, burst, allowed) \
                     SELECT id, burst::DOUBLE PRECISION - 1, now_ms, per_second, burst, TRUE \
                     FROM policy \
                     ON CONFLICT (org_id) DO UPDATE SET \
                         tokens = CASE WHEN LEAST(EXCLUDED.burst::DOUBLE PRECISION, \
                                         b.tokens + GREATEST(EXCLUDED.updated_at_ms - b.updated_at_ms, 0) \
                                                    * EXCLUDED.per_second / 1000.0) >= 1 \
                                  THEN LEAST(EXCLUDED.burst::DOUBLE PRECISION, \
                                         b.tokens + GREATEST(EXCLUDED.updated_at_ms - b.updated_at_ms, 0) \
                                                    * EXCLUDED.per_second / 1000.0) - 1 \
                                  ELSE LEAST(EXCLUDED.burst::DOUBLE PRECISION, \
                                         b.tokens + GREATEST(EXCLUDED.updated_at_ms - b.updated_at_ms, 0) \
                                                    * EXCLUDED.per_second / 1000.0) END, \
                         allowed = LEAST(EXCLUDED.burst::DOUBLE PRECISION, \
                                         b.tokens + GREATEST(EXCLUDED.updated_at_ms - b.updated_at_ms, 0) \
                                                    * EXCLUDED.per_second / 1000.0) >= 1, \
                         updated_at_ms = GREATEST(b.updated_at_ms, EXCLUDED.updated_at_ms), \
                         per_second = EXCLUDED.per_second, \
                         burst = EXCLUDED.burst \
                     RETURNING tokens, allowed, per_second, burst",
                )
                .bind(org_id)
                .bind(now)
                .bind(default_policy.per_second)
                .bind(i64::from(default_policy.burst))
                .fetch_optional(pool)
                .await?
                .ok_or_else(org_not_found)?;
                let tokens: f64 = row.try_get(0)?;
                let allowed: bool = row.try_get(1)?;
                let policy = RatePolicy {
                    per_second: row.try_get(2)?,
                    burst: u32::try_from(row.try_get::<i64, _>(3)?).unwrap_or(u32::MAX),
                };
                Ok(decision(allowed, tokens, policy))
            }
        }
    }
}

fn policy_from_override(
    per_second: Option<f64>,
    burst: Option<i64>,
    default_policy: RatePolicy,
) -> RatePolicy {
    match (per_second, burst.and_then(|b| u32::try_from(b).ok())) {
        (Some(per_second), Some(burst)) => RatePolicy { per_second, burst },
        _ => default_policy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy { per_second: 2.0, burst: 3 };

    #[test]
    fn burst_then_refusal_then_refill() {
        let mut state = None;
        let mut decisions = Vec::new();
        for _ in 0..4 {
            let (s, d) = take_token(state, POLICY, 1_000);
            state = Some(s);
            decisions.push(d);
        }
        assert_eq!(
            decisions.iter().map(|d| (d.allowed, d.remaining)).collect::<Vec<_>>(),
            vec![(true, 2), (true, 1), (true, 0), (false, 0)]
        );
        // Empty bucket at 2 tokens/s: full again in 1.5 s -> 2 s, next token in 0.5 s -> 1 s.
        assert_eq!(decisions[3].reset_seconds, 2);
        assert_eq!(decisions[3].retry_after_seconds, 1);
        assert_eq!(decisions[0].retry_after_seconds, 0);
        // 500 ms later exactly one token is back.
        let (s, d) = take_token(state, POLICY, 1_500);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let (_, d) = take_token(Some(s), POLICY, 1_500);
        assert!(!d.allowed);
        // Long idle: capped at burst.
        let (s, d) = take_token(Some(s), POLICY, 100_000);
        assert_eq!((d.allowed, d.remaining), (true, 2));
        assert_eq!(s.tokens, 2.0);
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let (s, _) = take_token(None, POLICY, 10_000);
        let (s2, d) = take_token(Some(s), POLICY, 5_000);
        assert!(d.allowed);
        assert_eq!(s2.tokens, 1.0);
        assert_eq!(s2.updated_ms, 10_000);
    }

    #[test]
    fn invalid_policies() {
        assert!(RatePolicy { per_second: 0.0, burst: 1 }.validate().is_err());
        assert!(RatePolicy { per_second: f64::NAN, burst: 1 }.validate().is_err());
        assert!(RatePolicy { per_second: 1.0, burst: 0 }.validate().is_err());
        assert!(POLICY.validate().is_ok());
    }
}
