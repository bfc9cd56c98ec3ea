//! Organizations: creating them (with their initial ledger credit) and finding them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Database, Executor, Row};

use crate::ledger::{self, Entry};
use crate::{BeginWrite, Dialect, Store, StoreError, keys, millis_to_time, on_backend, require_text};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub balance: i64,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Creates an organization with an initial balance (recorded as a ledger credit).
    /// Names are unique: a taken name is `Conflict`.
    pub async fn create_org(&self, name: &str, tokens: i64) -> Result<Org, StoreError> {
        require_text("organization name", name)?;
        if tokens < 0 {
            return Err(StoreError::Invalid("initial tokens must not be negative".into()));
        }
        let id = keys::random_id("org")?;
        let now = self.now_ms();
        // An async block so that `?` lands in `result` (mapped below), not in our caller.
        let result: Result<(), StoreError> = on_backend!(self, pool, d => async {
            let mut tx = pool.begin_write().await?;
            sqlx::query(d.sql(
                "INSERT INTO orgs (id, name, balance, created_at_ms) VALUES ($1, $2, $3, $4)",
            ))
            .bind(&id)
            .bind(name)
            .bind(tokens)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if tokens > 0 {
                let entry = Entry::credit(&id, tokens, Some("initial balance"), tokens, now);
                ledger::insert_entry(d, &mut tx, &entry).await?;
            }
            tx.commit().await?;
            Ok(())
        }.await);
        match result {
            Ok(()) => {
                Ok(Org { id, name: name.to_string(), balance: tokens, created_at: millis_to_time(now) })
            }
            Err(StoreError::Conflict(_)) => {
                Err(StoreError::Conflict("an organization with this name already exists".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Looks an organization up by id, else by name.
    pub async fn find_org(&self, id_or_name: &str) -> Result<Option<Org>, StoreError> {
        on_backend!(self, pool, d => {
            let row = sqlx::query(d.sql(
                "SELECT id, name, balance, created_at_ms FROM orgs WHERE id = $1 OR name = $1 \
                 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1",
            ))
            .bind(id_or_name)
            .fetch_optional(pool)
            .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(Org {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    balance: row.try_get(2)?,
                    created_at: millis_to_time(row.try_get(3)?),
                })),
            }
        })
    }

    pub(crate) async fn org_exists(&self, org_id: &str) -> Result<bool, StoreError> {
        on_backend!(self, pool, d => Ok(org_exists_in(d, pool, org_id).await?))
    }
}

/// Whether the organization exists, on a pool or inside a transaction.
pub(crate) async fn org_exists_in<'e, DB, E>(
    d: Dialect,
    executor: E,
    org_id: &str,
) -> Result<bool, sqlx::Error>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let row =
        sqlx::query(d.sql("SELECT 1 FROM orgs WHERE id = $1")).bind(org_id).fetch_optional(executor).await?;
    Ok(row.is_some())
}
