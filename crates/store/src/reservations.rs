//! Reservations: every charge is held as a reservation until its request is answered. A live
//! replica captures it (answered) or refunds it (not answered) in line; a replica that dies
//! (SIGKILL, OOM, node loss) can do neither, so any live replica's sweep refunds reservations
//! older than a bound that no live request can reach. The sweep takes each row with a
//! `DELETE … RETURNING` inside the refund's transaction: with every replica sweeping at once,
//! each reservation is refunded exactly once.

use std::time::Duration;

use sqlx::Row;

use crate::ledger::{Entry, credit_balance, insert_entry};
use crate::{BeginWrite, Store, StoreError, on_backend};

/// Reservations swept per round, so one sweep never holds a long transaction.
const SWEEP_BATCH: i64 = 100;

impl Store {
    /// The request was answered: its charge stands.
    pub async fn capture(&self, org_id: &str, request_id: &str) -> Result<(), StoreError> {
        on_backend!(self, pool, d => {
            sqlx::query(d.sql("DELETE FROM reservations WHERE org_id = $1 AND request_id = $2"))
                .bind(org_id)
                .bind(request_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Refunds every reservation older than `older_than` (its request can no longer be answered);
    /// returns how many were refunded by this call. Safe to run on every replica at once.
    pub async fn sweep_reservations(&self, older_than: Duration) -> Result<u64, StoreError> {
        let cutoff = self.now_ms().saturating_sub(older_than.as_millis() as i64);
        let mut refunded = 0;
        loop {
            let stale: Vec<(String, String)> = on_backend!(self, pool, d => {
                let rows = sqlx::query(d.sql(
                    "SELECT org_id, request_id FROM reservations WHERE created_at_ms <= $1 \
                     ORDER BY created_at_ms LIMIT $2",
                ))
                .bind(cutoff)
                .bind(SWEEP_BATCH)
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            let batch = stale.len() as i64;
            for (org_id, request_id) in stale {
                if self.refund_reservation(&org_id, &request_id).await? {
                    refunded += 1;
                }
            }
            if batch < SWEEP_BATCH {
                return Ok(refunded);
            }
        }
    }

    /// Takes one reservation and refunds it, in one transaction; false if another replica (or
    /// the request itself) took it first.
    async fn refund_reservation(&self, org_id: &str, request_id: &str) -> Result<bool, StoreError> {
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let mut tx = pool.begin_write().await?;
            let taken = sqlx::query(d.sql(
                "DELETE FROM reservations WHERE org_id = $1 AND request_id = $2 RETURNING amount, endpoint",
            ))
            .bind(org_id)
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = taken else { return Ok(false) };
            let amount: i64 = row.try_get(0)?;
            let endpoint: String = row.try_get(1)?;
            let Some(balance) = credit_balance(d, &mut tx, org_id, amount).await? else {
                return Err(StoreError::Invalid("balance would overflow".into()));
            };
            let entry = Entry::for_request("refund", org_id, amount, request_id, &endpoint, balance, now);
            insert_entry(d, &mut tx, &entry).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Reservations not yet captured or refunded, all organizations (for operators and tests).
    pub async fn open_reservations(&self) -> Result<i64, StoreError> {
        on_backend!(self, pool, d => {
            Ok(sqlx::query_scalar(d.sql("SELECT COUNT(*) FROM reservations")).fetch_one(pool).await?)
        })
    }
}
