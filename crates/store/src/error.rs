//! Errors and their mapping from database driver errors.

/// Everything the store can fail with. `Unavailable` is the only variant a client should retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, timed out, or is overloaded: maps to HTTP 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The organization, key or record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness rule was violated (e.g. organization name taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller passed an argument the store refuses (empty name, negative amount, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Schema migration failed on connect.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Any other database error (a bug, or a schema that does not match).
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
            sqlx::Error::Database(db) => {
                let message = db.message().to_string();
                if db.is_unique_violation() {
                    StoreError::Conflict(message)
                } else if db.is_foreign_key_violation() {
                    StoreError::NotFound(message)
                } else if db.is_check_violation() {
                    StoreError::Invalid(message)
                } else if db.code().is_some_and(|code| {
                    let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                    is_transient_code(&code, sqlite)
                }) {
                    StoreError::Unavailable(message)
                } else {
                    StoreError::Database(message)
                }
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(inner) => match StoreError::from(inner) {
                unavailable @ StoreError::Unavailable(_) => unavailable,
                other => StoreError::Migration(other.to_string()),
            },
            other => StoreError::Migration(other.to_string()),
        }
    }
}

/// Error codes that mean "try again later" rather than "your request is wrong".
/// SQLite codes are numeric (extended codes carry the primary code in the low byte);
/// PostgreSQL codes are five-character SQLSTATEs.
fn is_transient_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        // BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL
        return code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14 | 15));
    }
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || code == "57014" // statement timeout / query canceled
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
        || code == "55P03" // lock not available
        || code == "3D000" // database does not exist (yet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(is_transient_code("5", true));
        assert!(is_transient_code("517", true)); // SQLITE_BUSY_SNAPSHOT
        assert!(!is_transient_code("19", true)); // constraint
        assert!(is_transient_code("08006", false));
        assert!(is_transient_code("57P01", false));
        assert!(!is_transient_code("23505", false));
        assert!(!is_transient_code("42P01", false));
    }

    #[test]
    fn pool_timeout_is_unavailable() {
        assert!(matches!(StoreError::from(sqlx::Error::PoolTimedOut), StoreError::Unavailable(_)));
        assert!(matches!(StoreError::from(sqlx::Error::RowNotFound), StoreError::Database(_)));
    }
}
