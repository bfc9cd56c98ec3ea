//! Tenancy store for idverify: organizations, API keys, token balances with a ledger, idempotency
//! records and rate limits, on embedded SQLite (default) or PostgreSQL (several replicas).
//!
//! # Backends
//! - **SQLite** (`StoreConfig::database_url == None`): the file `idverify.sqlite3` in `data_dir`, created
//!   and migrated on [`Store::connect`]. WAL journal, `synchronous=NORMAL`, 5 s busy timeout; write
//!   transactions start with `BEGIN IMMEDIATE` so concurrent writers queue instead of failing. Meant for
//!   a single process.
//! - **PostgreSQL** (`database_url = Some("postgres://...")`): migrations run on connect under sqlx's
//!   advisory lock, so replicas may start together. Pool acquire timeout 2 s, connections are checked
//!   before use, so a database that went away yields [`StoreError::Unavailable`] quickly and the pool
//!   reconnects by itself once it is back.
//!
//! # Money
//! Balances are whole tokens (`i64`, never negative). Every change of balance writes a ledger row in
//! the same transaction: `credit` (top-up or initial tokens, with a note), `debit` (charge) and `refund`
//! (both with request id and endpoint). [`Store::charge`] is one conditional
//! `UPDATE ... WHERE balance >= amount RETURNING balance` plus the ledger insert, so concurrent charges
//! can neither overdraw nor lose updates. A refund needs an earlier charge with the same request id,
//! and the refunds of a request id never add up to more than its charges (a repeat is a no-op).
//!
//! # Idempotency
//! [`Store::idempotency_begin`] atomically claims `(org, key)`: `Started` for the first caller,
//! `InProgress` while it runs, `Replay` with the stored response once completed, `Mismatch` when the
//! same key comes with a different request fingerprint. Records expire 24 h after they were started;
//! an in-progress record older than 10 minutes is considered abandoned by a crashed worker and may be
//! claimed again. [`Store::idempotency_abandon`] (after a 5xx) frees the key for a retry.
//!
//! # Rate limits
//! A token bucket per organization (`burst` capacity, refilled at `per_second`), with an optional
//! per-org override stored in the database ([`Store::set_rate_limit`]).
//! - SQLite: buckets live in process memory, so the limit applies per process (per replica).
//! - PostgreSQL: buckets are rows in `rate_buckets`, each check is one atomic upsert, so all replicas
//!   share one limit per organization. The database clock is used so replicas with skewed clocks agree.
//!
//! # API keys
//! `idv_<12 hex prefix>_<64 hex secret>`: 256 random bits from the OS RNG, shown once by
//! [`Store::create_key`]. Only SHA-256 of the secret is stored, next to the prefix used to find it;
//! comparison is constant time and unknown prefixes are compared against a dummy hash, so unknown,
//! wrong and revoked keys take the same path. `last_used_at` is written at most once a minute per key.

mod error;
mod keys;
mod migrations;
mod rate;

pub use error::StoreError;
pub use rate::{RateDecision, RatePolicy};

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Transaction};

use rate::BucketState;

/// Idempotency records are kept (and replayed) for this long after the request started.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// An in-progress record older than this belongs to a worker that died.
const IN_PROGRESS_STALE_MS: i64 = 10 * 60 * 1000;
/// `last_used_at` is only rewritten when older than this (saves a write per request).
const LAST_USED_THROTTLE_MS: i64 = 60 * 1000;
/// How often expired idempotency records are swept (piggy-backed on `idempotency_begin`).
const PURGE_INTERVAL_MS: i64 = 10 * 60 * 1000;
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for connect + migrate, whatever the driver does with unroutable hosts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TEXT_LEN: usize = 256;
const MAX_LEDGER_LIMIT: u32 = 1000;

/// Where the store lives. `database_url: Some("postgres://...")` selects PostgreSQL, otherwise SQLite
/// in `data_dir/idverify.sqlite3`.
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

/// Source of "now" in milliseconds since the Unix epoch. Replaceable for tests of expiry and refill.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub balance: i64,
    pub created_at: DateTime<Utc>,
}

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
}

/// Handle to the store; cheap to clone, shares one connection pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish()
    }
}

struct Inner {
    backend: Backend,
    clock: Arc<dyn Clock>,
    /// Postgres rate buckets use the database clock unless a test clock was installed.
    db_clock_for_rates: bool,
    /// SQLite rate buckets (per process).
    buckets: Mutex<HashMap<String, BucketState>>,
    last_purge_ms: AtomicI64,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// SQL is written once with PostgreSQL `$n` placeholders; SQLite gets the equivalent `?n`.
#[derive(Clone, Copy)]
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn sql(self, postgres_sql: &'static str) -> &'static str {
        match self {
            Dialect::Postgres => postgres_sql,
            Dialect::Sqlite => sqlite_sql(postgres_sql),
        }
    }
}

fn sqlite_sql(postgres_sql: &'static str) -> &'static str {
    // A fixed set of literals, so leaking each converted string once is bounded.
    static CACHE: LazyLock<Mutex<HashMap<&'static str, &'static str>>> = LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    cache.entry(postgres_sql).or_insert_with(|| Box::leak(postgres_sql.replace('$', "?").into_boxed_str()))
}

/// Runs `$body` once per backend type, with `$pool` the typed pool and `$d` its SQL dialect.
macro_rules! on_backend {
    ($store:expr, $pool:ident, $d:ident => $body:expr) => {
        match &$store.inner.backend {
            Backend::Sqlite($pool) => {
                let $d = Dialect::Sqlite;
                $body
            }
            Backend::Postgres($pool) => {
                let $d = Dialect::Postgres;
                $body
            }
        }
    };
}

/// Inside an `on_backend!` body: adds `$amount` to the org's balance in `$tx`, unless that would
/// overflow. The new balance, or `None` when the org is missing or the balance would overflow.
macro_rules! credit_balance {
    ($d:ident, $tx:ident, $org_id:expr, $amount:expr) => {{
        let balance: Option<i64> =
            sqlx::query_scalar($d.sql(
                "UPDATE orgs SET balance = balance + $1 WHERE id = $2 AND balance <= $3 RETURNING balance",
            ))
            .bind($amount)
            .bind($org_id)
            .bind(i64::MAX - $amount)
            .fetch_optional(&mut *$tx)
            .await?;
        balance
    }};
}

/// Write transactions: SQLite takes the write lock up front (no read-then-upgrade deadlocks).
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

const INSERT_LEDGER: &str = "INSERT INTO ledger \
     (org_id, kind, amount, balance_after, request_id, endpoint, note, at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn require_text(what: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{what} must not be empty")));
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(StoreError::Invalid(format!("{what} is longer than {MAX_TEXT_LEN} bytes")));
    }
    Ok(())
}

fn require_positive(amount: i64) -> Result<(), StoreError> {
    if amount <= 0 {
        return Err(StoreError::Invalid("amount must be positive".into()));
    }
    Ok(())
}

fn org_not_found() -> StoreError {
    StoreError::NotFound("organization".into())
}

impl Store {
    /// Opens (creating and migrating) the configured database.
    pub async fn connect(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let backend = match cfg.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(StoreError::Invalid(
                        "database_url must start with postgres:// or postgresql://".into(),
                    ));
                }
                Self::connect_postgres(url).await?
            }
            _ => Self::connect_sqlite(cfg).await?,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                clock: Arc::new(SystemClock),
                db_clock_for_rates: true,
                buckets: Mutex::new(HashMap::new()),
                last_purge_ms: AtomicI64::new(0),
            }),
        })
    }

    async fn connect_postgres(url: &str) -> Result<Backend, StoreError> {
        // The URL may hold a password: never echo it in errors.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Invalid("database_url is not a valid PostgreSQL URL".into()))?
            .application_name("idverify")
            // A stuck query must not hold a request (and a pool connection) forever.
            .options([("statement_timeout", "15000")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(300)))
            .test_before_acquire(true)
            .connect_lazy_with(options);
        let setup = async {
            let migrator = migrations::postgres().await?;
            migrator.run(&pool).await?;
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
            Ok(Ok(())) => Ok(Backend::Postgres(pool)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Unavailable("timed out connecting to PostgreSQL".into())),
        }
    }

    async fn connect_sqlite(cfg: &StoreConfig) -> Result<Backend, StoreError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create data dir {}: {e}", cfg.data_dir.display()))
        })?;
        let options = SqliteConnectOptions::new()
            .filename(cfg.data_dir.join("idverify.sqlite3"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        migrations::sqlite().await?.run(&pool).await?;
        Ok(Backend::Sqlite(pool))
    }

    /// Same store, with `clock` as the source of time (tests of expiry and refill).
    /// Also makes PostgreSQL rate buckets use this clock instead of the database's.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Store {
        Store {
            inner: Arc::new(Inner {
                backend: self.inner.backend.clone(),
                clock,
                db_clock_for_rates: false,
                buckets: Mutex::new(HashMap::new()),
                last_purge_ms: AtomicI64::new(0),
            }),
        }
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Cheap round trip to the database (readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, pool, d => {
            sqlx::query(d.sql("SELECT 1")).execute(pool).await?;
        });
        Ok(())
    }

    /// Closes the pool; in-flight calls finish, later calls fail with `Unavailable`.
    pub async fn close(&self) {
        on_backend!(self, pool, _d => pool.close().await)
    }

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
                sqlx::query(d.sql(INSERT_LEDGER))
                    .bind(&id)
                    .bind("credit")
                    .bind(tokens)
                    .bind(tokens)
                    .bind(None::<&str>)
                    .bind(None::<&str>)
                    .bind("initial balance")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
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

    async fn org_exists(&self, org_id: &str) -> Result<bool, StoreError> {
        on_backend!(self, pool, d => {
            let row = sqlx::query(d.sql("SELECT 1 FROM orgs WHERE id = $1"))
                .bind(org_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Creates an API key. The returned `secret` is the only time the full key is available.
    pub async fn create_key(&self, org_id: &str, key_name: &str) -> Result<NewApiKey, StoreError> {
        require_text("key name", key_name)?;
        let now = self.now_ms();
        // A 48-bit prefix collision is very unlikely; retry a few times rather than fail.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let key_id = keys::random_id("key")?;
            let generated = keys::generate_key()?;
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
        static DUMMY_HASH: LazyLock<[u8; 32]> = LazyLock::new(|| keys::hash_secret("idverify-dummy-secret"));
        let Some((prefix, secret)) = keys::parse_key(presented) else {
            // Same hashing work as a real check; the format itself is public, so no DB lookup.
            let _ = keys::hashes_equal(&keys::hash_secret(presented), &DUMMY_HASH[..]);
            return Ok(None);
        };
        let computed = keys::hash_secret(secret);
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
                let _ = keys::hashes_equal(&computed, &DUMMY_HASH[..]);
                return Ok(None);
            };
            let stored: Vec<u8> = row.try_get(3)?;
            let matches = keys::hashes_equal(&computed, &stored);
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

    /// Adds tokens; returns the new balance. Ledger: `credit` with `note`.
    pub async fn top_up(&self, org_id: &str, amount: i64, note: &str) -> Result<i64, StoreError> {
        require_positive(amount)?;
        if note.len() > MAX_TEXT_LEN {
            return Err(StoreError::Invalid(format!("note is longer than {MAX_TEXT_LEN} bytes")));
        }
        let now = self.now_ms();
        on_backend!(self, pool, d => {
            let mut tx = pool.begin_write().await?;
            let balance = credit_balance!(d, tx, org_id, amount);
            let Some(balance) = balance else {
                let exists = sqlx::query(d.sql("SELECT 1 FROM orgs WHERE id = $1"))
                    .bind(org_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                return Err(if exists {
                    StoreError::Invalid("balance would overflow".into())
                } else {
                    org_not_found()
                });
            };
            sqlx::query(d.sql(INSERT_LEDGER))
                .bind(org_id)
                .bind("credit")
                .bind(amount)
                .bind(balance)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind((!note.is_empty()).then_some(note))
                .bind(now)
                .execute(&mut *tx)
                .await?;
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
                let current: Option<i64> =
                    sqlx::query_scalar(d.sql("SELECT balance FROM orgs WHERE id = $1"))
                        .bind(org_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                return match current {
                    Some(balance) => Ok(Charge::Insufficient { balance }),
                    None => Err(org_not_found()),
                };
            };
            sqlx::query(d.sql(INSERT_LEDGER))
                .bind(org_id)
                .bind("debit")
                .bind(amount)
                .bind(balance)
                .bind(request_id)
                .bind(endpoint)
                .bind(None::<&str>)
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
            let balance = credit_balance!(d, tx, org_id, amount);
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
            sqlx::query(d.sql(INSERT_LEDGER))
                .bind(org_id)
                .bind("refund")
                .bind(amount)
                .bind(balance)
                .bind(request_id)
                .bind(endpoint)
                .bind(None::<&str>)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(balance)
        })
    }

    /// Current balance.
    pub async fn balance(&self, org_id: &str) -> Result<i64, StoreError> {
        on_backend!(self, pool, d => {
            let balance: Option<i64> =
                sqlx::query_scalar(d.sql("SELECT balance FROM orgs WHERE id = $1"))
                    .bind(org_id)
                    .fetch_optional(pool)
                    .await?;
            balance.ok_or_else(org_not_found)
        })
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

    /// Claims idempotency key `key` for this organization (see the crate docs for the states).
    pub async fn idempotency_begin(
        &self,
        org_id: &str,
        key: &str,
        fingerprint: &str,
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
                         status = NULL, content_type = NULL, body = NULL, \
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
                .bind(now.saturating_sub(IN_PROGRESS_STALE_MS))
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
                        "SELECT fingerprint, state, status, content_type, body \
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

    /// Stores the response of a request started with `idempotency_begin`, for replay.
    /// `NotFound` if this caller no longer holds the key (abandoned, expired or taken over).
    pub async fn idempotency_complete(
        &self,
        org_id: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        on_backend!(self, pool, d => {
            let done = sqlx::query(d.sql(
                "UPDATE idempotency SET state = 'done', status = $3, content_type = $4, body = $5 \
                 WHERE org_id = $1 AND idem_key = $2 AND state = 'in_progress'",
            ))
            .bind(org_id)
            .bind(key)
            .bind(i64::from(response.status))
            .bind(&response.content_type)
            .bind(&response.body[..])
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("in-progress idempotency record".into()));
            }
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
                let (state, decision) = rate::take_token(buckets.get(org_id).copied(), policy, now);
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
                Ok(rate::decision(allowed, tokens, policy))
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

    #[test]
    fn placeholders_converted_for_sqlite() {
        assert_eq!(sqlite_sql("SELECT $1, $2 WHERE x = $1"), "SELECT ?1, ?2 WHERE x = ?1");
        // Cached: same pointer the second time.
        assert!(std::ptr::eq(sqlite_sql("SELECT $1"), sqlite_sql("SELECT $1")));
    }

    #[test]
    fn public_types_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
        check::<StoreError>();
        check::<Org>();
        check::<IdempotencyBegin>();
    }

    #[test]
    fn secret_not_in_debug() {
        let key =
            NewApiKey { key_id: "key_1".into(), secret: "idv_abc_supersecret".into(), prefix: "abc".into() };
        assert!(!format!("{key:?}").contains("supersecret"));
    }
}
