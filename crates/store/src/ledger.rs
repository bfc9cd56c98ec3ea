//! Balances and the ledger: top-ups, charges and refunds, each a balance change plus one ledger
//! row in the same transaction, written by [`insert_entry`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Database, Executor, Row, Transaction};

use crate::orgs::org_exists_in;
use crate::{
    BeginWrite, Dialect, MAX_TEXT_LEN, Store, StoreError, millis_to_time, on_backend, org_not_found,
    require_text,
};

const MAX_LEDGER_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Charge {
    Charged { balance: i64 },
    Insufficient { balance: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    /// `debit`, `credit` or `refund`.
    pub kind: String,
    /// Always positive; the kind gives the direction.
    pub amount: i64,
    pub balance_after: i64,
    pub request_id: Option<String>,
    pub endpoint: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// A ledger row about to be written. Credits carry a note; debits and refunds a request.
pub(crate) struct Entry<'a> {
    org_id: &'a str,
    kind: &'static str,
    amount: i64,
    balance_after: i64,
    request_id: Option<&'a str>,
    endpoint: Option<&'a str>,
    note: Option<&'a str>,
    at_ms: i64,
}

impl<'a> Entry<'a> {
    pub(crate) fn credit(
        org_id: &'a str,
        amount: i64,
        note: Option<&'a str>,
        balance_after: i64,
        at_ms: i64,
    ) -> Self {
        Entry { org_id, kind: "credit", amount, balance_after, request_id: None, endpoint: None, note, at_ms }
    }

    pub(crate) fn for_request(
        kind: &'static str,
        org_id: &'a str,
        amount: i64,
        request_id: &'a str,
        endpoint: &'a str,
        balance_after: i64,
        at_ms: i64,
    ) -> Self {
        Entry {
            org_id,
            kind,
            amount,
            balance_after,
            request_id: Some(request_id),
            endpoint: Some(endpoint),
            note: None,
            at_ms,
        }
    }
}

/// The one ledger insert, inside the transaction that changed the balance.
pub(crate) async fn insert_entry<DB>(
    d: Dialect,
    tx: &mut Transaction<'_, DB>,
    entry: &Entry<'_>,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(d.sql(
        "INSERT INTO ledger (org_id, kind, amount, balance_after, request_id, endpoint, note, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    ))
    .bind(entry.org_id)
    .bind(entry.kind)
    .bind(entry.amount)
    .bind(entry.balance_after)
    .bind(entry.request_id)
    .bind(entry.endpoint)
    .bind(entry.note)
    .bind(entry.at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds `amount` to the org's balance in `tx`, unless that would overflow. The new balance, or
/// `None` when the org is missing or the balance would overflow.
pub(crate) async fn credit_balance<DB>(
    d: Dialect,
    tx: &mut Transaction<'_, DB>,
    org_id: &str,
    amount: i64,
) -> Result<Option<i64>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    sqlx::query_scalar(
        d.sql("UPDATE orgs SET balance = balance + $1 WHERE id = $2 AND balance <= $3 RETURNING balance"),
    )
    .bind(amount)
    .bind(org_id)
    .bind(i64::MAX - amount)
    .fetch_optional(&mut **tx)
    .await
}

/// The org's balance (`None` if it does not exist), on a pool or inside a transaction.
async fn balance_of<'e, DB, E>(d: Dialect, executor: E, org_id: &str) -> Result<Option<i64>, sqlx::Error>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    sqlx::query_scalar(d.sql("SELECT balance FROM orgs WHERE id = $1"))
        .bind(org_id)
        .fetch_optional(executor)
        .await
}

fn require_positive(amount: i64) -> Result<(), StoreError> {
    if amount <= 0 {
        return Err(StoreError::Invalid("amount must be positive".into()));
    }
    Ok(())
}

impl Store {
    /// Adds tokens; returns the new balance. Ledger: `credit` with `note`.
    pub async fn top_up(&self, org_id: &str, amount: i64, note: &str) -> Result<i64, StoreError> {
        require_positive(amount)?;
        if note.len() > MAX_TEXT_LEN {
            return Err(StoreError::Invalid(format!("note is longer than {MAX_TEXT_LEN} bytes")));
        }
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let mut tx = pool.begin_write().await?;
            let Some(balance) = credit_balance(d, &mut tx, org_id, amount).await? else {
                return Err(if org_exists_in(d, &mut *tx, org_id).await? {
                    StoreError::Invalid("balance would overflow".into())
                } else {
                    org_not_found()
                });
            };
            let note = (!note.is_empty()).then_some(note);
            insert_entry(d, &mut tx, &Entry::credit(org_id, amount, note, balance, now)).await?;
            tx.commit().await?;
            Ok(balance)
        })
    }

    /// Takes `amount` tokens if the balance allows it (atomic, concurrency-safe). Ledger: `debit`.
    /// `amount == 0` charges nothing and writes no ledger row.
    pub async fn charge(
        &self,
        org_id: &str,
        amount: i64,
        request_id: &str,
        endpoint: &str,
    ) -> Result<Charge, StoreError> {
        require_text("request id", request_id)?;
        require_text("endpoint", endpoint)?;
        if amount == 0 {
            return Ok(Charge::Charged { balance: self.balance(org_id).await? });
        }
        require_positive(amount)?;
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let mut tx = pool.begin_write().await?;
            let balance: Option<i64> = sqlx::query_scalar(d.sql(
                "UPDATE orgs SET balance = balance - $1 WHERE id = $2 AND balance >= $1 \
                 RETURNING balance",
            ))
            .bind(amount)
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(balance) = balance else {
                return match balance_of(d, &mut *tx, org_id).await? {
                    Some(balance) => Ok(Charge::Insufficient { balance }),
                    None => Err(org_not_found()),
                };
            };
            let entry = Entry::for_request("debit", org_id, amount, request_id, endpoint, balance, now);
            insert_entry(d, &mut tx, &entry).await?;
            // Held until the request is answered (`capture`) or refunded; see reservations.rs.
            sqlx::query(d.sql(
                "INSERT INTO reservations (org_id, request_id, endpoint, amount, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            ))
            .bind(org_id)
            .bind(request_id)
            .bind(endpoint)
            .bind(amount)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Charge::Charged { balance })
        })
    }

    /// Gives back (part of) what request `request_id` was charged; returns the new balance.
    /// Refunds of a request id never exceed what it was charged: once it is fully refunded, a
    /// repeat changes nothing and returns the balance. Refunding a request id that was never
    /// charged, or more than it was charged, is `Invalid`.
    pub async fn refund(
        &self,
        org_id: &str,
        amount: i64,
        request_id: &str,
        endpoint: &str,
    ) -> Result<i64, StoreError> {
        require_positive(amount)?;
        require_text("request id", request_id)?;
        require_text("endpoint", endpoint)?;
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let mut tx = pool.begin_write().await?;
            // Credit first: on PostgreSQL this locks the org row, so concurrent refunds of the same
            // request queue here and the sums below (a fresh snapshot) include the winner's row.
            let balance = credit_balance(d, &mut tx, org_id, amount).await?;
            let row = sqlx::query(d.sql(
                // SUM(BIGINT) is NUMERIC on PostgreSQL: cast back.
                "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'debit' THEN amount ELSE 0 END), 0) AS BIGINT), \
                        CAST(COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END), 0) AS BIGINT), \
                        (SELECT balance FROM orgs WHERE id = $1) \
                 FROM ledger WHERE org_id = $1 AND request_id = $2",
            ))
            .bind(org_id)
            .bind(request_id)
            .fetch_one(&mut *tx)
            .await?;
            let charged: i64 = row.try_get(0)?;
            let refunded: i64 = row.try_get(1)?;
            let Some(balance) = balance else {
                return Err(match row.try_get::<Option<i64>, _>(2)? {
                    None => org_not_found(),
                    Some(_) => StoreError::Invalid("balance would overflow".into()),
                });
            };
            if charged == 0 {
                return Err(StoreError::Invalid("no charge recorded for this request id".into()));
            }
            if refunded + amount > charged {
                if refunded > 0 {
                    // A repeated refund: nothing more to give back. Dropping `tx` undoes the credit.
                    return Ok(balance - amount);
                }
                return Err(StoreError::Invalid(
                    "refund exceeds the amount charged for this request".into(),
                ));
            }
            let entry = Entry::for_request("refund", org_id, amount, request_id, endpoint, balance, now);
            insert_entry(d, &mut tx, &entry).await?;
            sqlx::query(d.sql("DELETE FROM reservations WHERE org_id = $1 AND request_id = $2"))
                .bind(org_id)
                .bind(request_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(balance)
        })
    }

    /// Current balance.
    pub async fn balance(&self, org_id: &str) -> Result<i64, StoreError> {
        on_backend!(self, pool, d => balance_of(d, pool, org_id).await?.ok_or_else(org_not_found))
    }

    /// Most recent ledger entries first, at most `limit` (capped at 1000).
    pub async fn ledger(&self, org_id: &str, limit: u32) -> Result<Vec<LedgerEntry>, StoreError> {
        if !self.org_exists(org_id).await? {
            return Err(org_not_found());
        }
        let limit = i64::from(limit.min(MAX_LEDGER_LIMIT));
        on_backend!(self, pool, d => {
            let rows = sqlx::query(d.sql(
                "SELECT id, kind, amount, balance_after, request_id, endpoint, note, at_ms \
                 FROM ledger WHERE org_id = $1 ORDER BY id DESC LIMIT $2",
            ))
            .bind(org_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(LedgerEntry {
                        id: row.try_get(0)?,
                        kind: row.try_get(1)?,
                        amount: row.try_get(2)?,
                        balance_after: row.try_get(3)?,
                        request_id: row.try_get(4)?,
                        endpoint: row.try_get(5)?,
                        note: row.try_get(6)?,
                        at: millis_to_time(row.try_get(7)?),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }
}
