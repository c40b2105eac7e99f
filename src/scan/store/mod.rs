//! The scan database: SQLite by default (one file, WAL), PostgreSQL through a URL. Both
//! run the same queries (through sqlx's `Any` driver) on the same logical schema, so
//! every behaviour is tested against both.

mod ingest;
mod outbox;
mod queries;
mod sync;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

pub use ingest::{IngestOutcome, Ingested};
pub use outbox::Delivery;
pub use queries::{EventRecord, GroupStatus, ScanRecord};
pub use sync::{SyncAction, SyncChange};

/// Why the scan database failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the scan database {target}: {message}")]
    Open {
        /// The file, or the server without credentials.
        target: String,
        /// What went wrong.
        message: String,
    },
    /// A query failed.
    #[error("scan database: {0}")]
    Query(String),
    /// A scan group named on the command line does not exist.
    #[error("no scan group `{0}`; groups come from `tenants[].scans` in the desired-state file")]
    UnknownGroup(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Query(error.to_string())
    }
}

/// A connection pool to the scan database, migrated to the current schema.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("src/scan/store/migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("src/scan/store/migrations/postgres");

/// Creates `path` with mode 0600 when it does not exist, or takes group's and others'
/// permissions away from it when it does.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating it if needed) the SQLite database at `path`, readable by its owner only.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        install_default_drivers();
        let target = path.display().to_string();
        let open_error = |e: sqlx::Error| StoreError::Open { target: target.clone(), message: e.to_string() };
        // Customers' open ports: readable by its owner only. SQLite gives its -wal and -shm
        // files the database file's mode, so the file is made (or narrowed) first.
        private_file(path).map_err(|e| StoreError::Open { target: target.clone(), message: e.to_string() })?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(open_error)?;
        pool.execute("PRAGMA journal_mode = WAL").await.map_err(open_error)?;
        SQLITE.run(&pool).await.map_err(|e| StoreError::Open { target: target.clone(), message: e.to_string() })?;
        Ok(Self { pool })
    }

    /// Connects to the PostgreSQL server at `url` (`postgres://user:password@host/db`).
    pub async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let target = redact_url(url);
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(|e| StoreError::Open { target: target.clone(), message: redact_message(&e.to_string(), url) })?;
        POSTGRES.run(&pool).await.map_err(|e| StoreError::Open { target: target.clone(), message: e.to_string() })?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("<redacted>"));
            }
            // The URL form encodes the marker; it reads better as written.
            parsed.to_string().replacen("%3Credacted%3E", "<redacted>", 1)
        }
        Err(_) => "<the configured URL>".to_owned(),
    }
}

fn redact_message(message: &str, url: &str) -> String {
    match url::Url::parse(url).ok().and_then(|u| u.password().map(str::to_owned)) {
        Some(password) if !password.is_empty() => message.replace(&password, "<redacted>"),
        _ => message.to_owned(),
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    /// The two migrations describe one schema: only the id column's syntax may differ.
    #[test]
    fn sqlite_and_postgres_schemas_stay_in_step() {
        let sqlite = include_str!("migrations/sqlite/0001_scan_database.sql");
        let postgres = include_str!("migrations/postgres/0001_scan_database.sql");
        // The first line is each file's own comment.
        let same = |text: &str| {
            let body: Vec<&str> = text.lines().skip(1).collect();
            body.join("\n")
                .replace("id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,", "id INTEGER PRIMARY KEY,")
        };
        assert_eq!(same(sqlite), same(postgres), "change both migrations together");
    }
}
