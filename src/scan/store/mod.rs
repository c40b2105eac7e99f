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

use crate::config::model::DatabaseTls;

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
    /// How the server's statements name their parameters.
    params: ParamStyle,
}

/// How a statement built at run time names its parameters: `$1, $2...` (PostgreSQL), or `?`
/// in the order they are bound (SQLite, where binding named parameters takes time quadratic
/// in their number: a statement of thousands of them spent most of an ingest there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamStyle {
    Numbered,
    Positional,
}

impl ParamStyle {
    /// The placeholders of a statement's `count` parameters, in the order they are bound.
    fn placeholders(self, count: usize) -> impl Iterator<Item = String> {
        (1..=count).map(move |n| match self {
            Self::Numbered => format!("${n}"),
            Self::Positional => "?".to_owned(),
        })
    }

    /// `rows` rows of `width` parameters each, bound row by row: `($1, $2), ($3, $4)`.
    fn rows(self, rows: usize, width: usize) -> String {
        let mut placeholders = self.placeholders(rows * width);
        let row = |_| format!("({})", placeholders.by_ref().take(width).collect::<Vec<_>>().join(", "));
        (0..rows).map(row).collect::<Vec<_>>().join(", ")
    }
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
        Ok(Self { pool, params: ParamStyle::Positional })
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
        Ok(Self { pool, params: ParamStyle::Numbered })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `url` (PostgreSQL or MySQL) with the TLS that `tls` asks for: a server off this machine
/// is reached with its certificate verified (`sslmode=verify-full`, `ssl-mode=VERIFY_IDENTITY`)
/// unless the URL names a mode of its own; one that turns TLS off there is refused unless
/// `tls` is `disable`. `ca` is the file of the CA that vouches for the server. Errors never
/// carry the URL's password.
pub fn secured_url(url: &str, tls: DatabaseTls, ca: Option<&Path>) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("the URL is not valid: {e}"))?;
    let (mode_key, verify, off, ca_key): (&str, &str, &[&str], &str) = match parsed.scheme() {
        "postgres" | "postgresql" => ("sslmode", "verify-full", &["disable", "allow", "prefer"], "sslrootcert"),
        "mysql" | "mariadb" => ("ssl-mode", "VERIFY_IDENTITY", &["DISABLED", "PREFERRED"], "ssl-ca"),
        _ => return Ok(url.to_owned()),
    };
    let host = parsed.host_str().unwrap_or_default().to_owned();
    // No host is a local socket: this machine.
    let local = host.is_empty() || crate::config::fields::is_loopback(&host);
    let given = parsed.query_pairs().find(|(key, _)| key == mode_key).map(|(_, value)| value.into_owned());
    if tls == DatabaseTls::Verify {
        if let Some(mode) = &given
            && !local
            && off.iter().any(|o| o.eq_ignore_ascii_case(mode))
        {
            return Err(format!(
                "{} is not on this machine and the URL's `{mode_key}={mode}` may send its password and data in clear; set `tls: disable` to allow that",
                host
            ));
        }
        if given.is_none() && !local {
            parsed.query_pairs_mut().append_pair(mode_key, verify);
        }
    }
    if let Some(ca) = ca {
        parsed.query_pairs_mut().append_pair(ca_key, &ca.to_string_lossy());
    }
    Ok(parsed.to_string())
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
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgresql_and_positional_for_sqlite() {
        assert_eq!(ParamStyle::Numbered.rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(ParamStyle::Positional.rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(ParamStyle::Numbered.placeholders(2).collect::<Vec<_>>(), ["$1", "$2"]);
    }

    #[test]
    fn a_server_off_this_machine_is_reached_over_verified_tls_unless_the_file_says_otherwise() {
        let verify = |url: &str| secured_url(url, DatabaseTls::Verify, None);
        assert_eq!(
            verify("postgres://u:p@db.lab.internal/scans").unwrap(),
            "postgres://u:p@db.lab.internal/scans?sslmode=verify-full"
        );
        assert_eq!(
            verify("mysql://u:p@db.lab.internal:3306").unwrap(),
            "mysql://u:p@db.lab.internal:3306?ssl-mode=VERIFY_IDENTITY"
        );
        // The URL's own mode stands when it keeps TLS on, and on this machine.
        assert_eq!(
            verify("postgres://u@db.lab.internal/s?sslmode=require").unwrap(),
            "postgres://u@db.lab.internal/s?sslmode=require"
        );
        assert_eq!(verify("postgres://u@127.0.0.1:5432/s").unwrap(), "postgres://u@127.0.0.1:5432/s");
        assert_eq!(verify("mysql://u@localhost/?ssl-mode=DISABLED").unwrap(), "mysql://u@localhost/?ssl-mode=DISABLED");
        // One that turns TLS off elsewhere is refused, without the password, unless allowed.
        let refused = verify("postgres://u:s3cr3t@db.lab.internal/s?sslmode=disable").unwrap_err();
        assert!(
            refused.contains("db.lab.internal is not on this machine") && refused.contains("`tls: disable`"),
            "{refused}"
        );
        assert!(!refused.contains("s3cr3t"));
        assert!(verify("mysql://u@10.0.0.5/?ssl-mode=preferred").is_err());
        let allowed = secured_url("postgres://u@db.lab.internal/s?sslmode=disable", DatabaseTls::Disable, None);
        assert_eq!(allowed.unwrap(), "postgres://u@db.lab.internal/s?sslmode=disable");
        // The CA file goes where each driver reads it.
        let ca = Some(Path::new("/etc/seclab/db-ca.pem"));
        assert!(
            secured_url("postgres://u@127.0.0.1/s", DatabaseTls::Verify, ca)
                .unwrap()
                .ends_with("?sslrootcert=%2Fetc%2Fseclab%2Fdb-ca.pem")
        );
        assert!(
            secured_url("mysql://u@127.0.0.1/", DatabaseTls::Verify, ca)
                .unwrap()
                .ends_with("?ssl-ca=%2Fetc%2Fseclab%2Fdb-ca.pem")
        );
    }

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
