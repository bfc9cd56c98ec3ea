//! Tenancy store for idverify: organizations, API keys, token balances with a ledger, idempotency
//! records and rate limits, on embedded SQLite (default) or PostgreSQL (several replicas).
//!
//! # Module map
//! One file per concern, each with its own `impl Store` block:
//! - `lib.rs` (here): [`Store`], [`StoreConfig`], [`Clock`], connecting and migrating, and the
//!   SQLite/PostgreSQL dispatch (`on_backend!`, `Dialect`, `BeginWrite`) the other files use.
//! - `orgs.rs`: organizations ([`Store::create_org`], [`Store::find_org`]).
//! - `keys.rs`: API keys: their format (generation, parsing, hashing) and storing, listing,
//!   revoking and authenticating them.
//! - `ledger.rs`: balances and the ledger (top-up, charge, refund), with the one ledger insert.
//! - `idempotency.rs`: claiming, completing, abandoning and purging idempotency records.
//! - `rate.rs`: the per-organization rate limit on each backend, and the token-bucket arithmetic
//!   both share.
//! - `error.rs`: [`StoreError`] and its mapping from driver errors; `migrations.rs`: the embedded
//!   schema.
//!
//! # Backends
//! - **SQLite** (`StoreConfig::database_url == None`): the file `idverify.sqlite3` in `data_dir`, created
//!   and migrated on [`Store::connect`]. WAL journal, `synchronous=NORMAL`, 5 s busy timeout; write
//!   transactions start with `BEGIN IMMEDIATE` so concurrent writers queue instead of failing. Meant for
//!   a single process.
//! - **PostgreSQL** (`database_url = Some("postgres://...")`): migrations run on connect under sqlx's
//!   advisory lock, so replicas may start together. Start-up waits up to `connect_timeout` for the
//!   server (one still starting is retried); TLS and authentication failures end it at once. Pool
//!   of `max_connections`, acquire timeout 2 s (or `connect_timeout` if shorter), connections are
//!   checked before use, so a database that went away yields [`StoreError::Unavailable`] quickly and
//!   the pool reconnects by itself once it is back.
//! - **TLS** (PostgreSQL): rustls, driven by the URL's libpq parameters: `sslmode=disable|prefer|
//!   require|verify-ca|verify-full` (default `prefer`: TLS when the server offers it, unverified) and
//!   `sslrootcert=PATH` (CAs added to the Mozilla roots compiled in). `verify-full` checks the chain
//!   and the host name. `verify-ca` should check the chain only, but sqlx 0.8.6 with rustls
//!   >= 0.23.24 checks the name too (sqlx issue #3793, fixed after 0.8.6).
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
//! an in-progress record older than the caller's `stale_after` (the longest a request can run) is
//! considered abandoned by a dead worker and may be claimed again. [`Store::idempotency_complete`]
//! stores the answer and captures the request's reservation in one transaction.
//! [`Store::idempotency_abandon`] (after a failure) frees the key for a retry.
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
mod idempotency;
mod keys;
mod ledger;
mod migrations;
mod orgs;
mod rate;
mod reservations;

pub use error::StoreError;
pub use idempotency::{IDEMPOTENCY_TTL, IdempotencyBegin, StoredResponse};
pub use keys::{ApiKeyInfo, NewApiKey, Principal};
pub use ledger::{Charge, LedgerEntry};
pub use orgs::Org;
pub use rate::{RateDecision, RatePolicy};

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Transaction;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use rate::BucketState;

/// A request waits at most this long for a pooled PostgreSQL connection, so an outage answers 503 fast.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TEXT_LEN: usize = 256;

/// Where the store lives. `database_url: Some("postgres://...")` selects PostgreSQL, otherwise SQLite
/// in `data_dir/idverify.sqlite3`.
#[derive(Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// PostgreSQL pool size (per process).
    pub max_connections: u32,
    /// Upper bound for start-up (connect + migrate), whatever the driver does with unroutable hosts.
    pub connect_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::new(),
            database_url: None,
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password.
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
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
    /// When `idempotency_begin` last swept expired records.
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
            $crate::Backend::Sqlite($pool) => {
                let $d = $crate::Dialect::Sqlite;
                $body
            }
            $crate::Backend::Postgres($pool) => {
                let $d = $crate::Dialect::Postgres;
                $body
            }
        }
    };
}
use on_backend;

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

fn org_not_found() -> StoreError {
    StoreError::NotFound("organization".into())
}

/// The first connection's failure, said so that an operator knows what to fix. Never includes the URL.
fn startup_error(error: sqlx::Error, options: &PgConnectOptions, timeout: Duration) -> StoreError {
    let host = options.get_host();
    match &error {
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
            "no connection to PostgreSQL at {host}:{} within {} s (database_connect_timeout_secs)",
            options.get_port(),
            timeout.as_secs_f32()
        )),
        // Certificate checks fail inside the handshake's I/O, so sqlx reports most of them as an
        // I/O error of kind InvalidData wrapping the rustls error; setup errors come as `Tls`.
        sqlx::Error::Tls(_) | sqlx::Error::Io(_) if is_tls_failure(&error) => {
            let reason = match &error {
                sqlx::Error::Tls(reason) => reason.to_string(),
                other => other.to_string(),
            };
            let hint = if reason.contains("UnknownIssuer") {
                "the server certificate is not signed by a CA in sslrootcert (nor by a public root CA)"
            } else if reason.contains("not valid for name") {
                // sqlx 0.8.6 with rustls >= 0.23.24 checks the name under verify-ca too (sqlx #3793).
                "the host name in database_url is not in the server certificate (sslmode=verify-full, \
                 and with this sqlx also verify-ca, checks it): connect by a name the certificate has"
            } else {
                "check sslmode and sslrootcert"
            };
            StoreError::Unavailable(format!("TLS with PostgreSQL at {host} failed: {hint} ({reason})"))
        }
        sqlx::Error::Io(io)
            if matches!(io.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) =>
        {
            StoreError::Invalid(format!(
                "cannot read a file named in database_url (sslrootcert, or the socket directory): {io}"
            ))
        }
        _ => StoreError::from(error),
    }
}

fn is_tls_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData
                && io.get_ref().is_some_and(|inner| {
                    let text = inner.to_string();
                    text.contains("certificate") || text.contains("TLS") || text.contains("handshake")
                })
        }
        _ => false,
    }
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
                Self::connect_postgres(url, cfg).await?
            }
            _ => Self::connect_sqlite(cfg).await?,
        };
        Ok(Store::on(backend, Arc::new(SystemClock), true))
    }

    /// A fresh handle on `backend`: new in-memory rate buckets and purge timer.
    fn on(backend: Backend, clock: Arc<dyn Clock>, db_clock_for_rates: bool) -> Store {
        Store {
            inner: Arc::new(Inner {
                backend,
                clock,
                db_clock_for_rates,
                buckets: Mutex::new(HashMap::new()),
                last_purge_ms: AtomicI64::new(0),
            }),
        }
    }

    async fn connect_postgres(url: &str, cfg: &StoreConfig) -> Result<Backend, StoreError> {
        if cfg.max_connections == 0 || cfg.connect_timeout.is_zero() {
            return Err(StoreError::Invalid("max_connections and connect_timeout must be positive".into()));
        }
        // The URL may hold a password: never echo it in errors.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Invalid("database_url is not a valid PostgreSQL URL".into()))?
            .application_name("idverify")
            // A stuck query must not hold a request (and a pool connection) forever.
            .options([("statement_timeout", "15000")]);
        // Start-up gets its own one-connection pool whose acquire waits the whole connect timeout, so
        // a server still starting is retried; TLS and authentication errors end the wait at once.
        let startup = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(cfg.connect_timeout)
            .connect_lazy_with(options.clone());
        let setup = async {
            let mut connection =
                startup.acquire().await.map_err(|e| startup_error(e, &options, cfg.connect_timeout))?;
            migrations::postgres().await?.run(&mut *connection).await?;
            Ok::<_, StoreError>(())
        };
        let result = tokio::time::timeout(cfg.connect_timeout, setup).await;
        startup.close().await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(StoreError::Unavailable("timed out connecting to PostgreSQL".into())),
        }
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .min_connections(0)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT.min(cfg.connect_timeout))
            .idle_timeout(Some(Duration::from_secs(300)))
            .test_before_acquire(true)
            .connect_lazy_with(options);
        Ok(Backend::Postgres(pool))
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
        Store::on(self.inner.backend.clone(), clock, false)
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

    /// Whether a pooled connection to the database is TLS-encrypted (always false for SQLite, a file).
    pub async fn connection_encrypted(&self) -> Result<bool, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(_) => Ok(false),
            Backend::Postgres(pool) => {
                let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
                Ok(sqlx::query_scalar::<_, bool>(sql).fetch_optional(pool).await?.unwrap_or(false))
            }
        }
    }

    /// Closes the pool; in-flight calls finish, later calls fail with `Unavailable`.
    pub async fn close(&self) {
        on_backend!(self, pool, _d => pool.close().await)
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
}
