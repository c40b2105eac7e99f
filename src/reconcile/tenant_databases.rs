//! The tenants' databases on an external MySQL or MariaDB server (`tenantDatabase.mode:
//! external`): each tenant's database and user, its password and its grant, reconciled by
//! seclab itself over a connection of its own. What seclab created is recorded on the server
//! (`seclab.tenant_databases`), so that a tenant leaving the file can be found, and dropped
//! with `--allow-destructive`.
//!
//! Looking never writes: a plan is made from `information_schema` and a login as each user,
//! and a server that matches the file gets no statement at all. Passwords travel only inside
//! statements sent to the server (statement logging is off) and are never printed.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection, Row};

use crate::causes::one_line;
use crate::cluster::readiness::Readiness;
use crate::cluster::{Cluster, ClusterError};
use crate::config::model::DatabaseMode;
use crate::config::{Lab, SecretSource};
use crate::render::tenant_password_secret;
use crate::scan::store::{redact_url, secured_url};

use super::scan_database::base_dir;
use super::secrets::secret_data;
use super::status::LabStatus;

/// Privileges a tenant's user must hold on its own database (those of `ALL` that every MySQL
/// and MariaDB version has).
const REQUIRED: [&str; 8] = ["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX"];

/// One tenant's database and user, as the file wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The tenant.
    pub tenant: String,
    /// Its database.
    pub database: String,
    /// Its user.
    pub user: String,
}

/// What one step does on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// `CREATE DATABASE`.
    CreateDatabase,
    /// `CREATE USER` with the tenant's password.
    CreateUser,
    /// `ALTER USER`: the user cannot log in with the password seclab keeps.
    SetPassword,
    /// The user's privileges made exactly `ALL` on its database.
    Grant,
    /// Recorded as seclab's in `seclab.tenant_databases`.
    Record,
    /// The database and user of a tenant that left the file dropped (`--allow-destructive`).
    Drop,
    /// The same, kept: `--allow-destructive` was not given.
    Keep,
}

/// One step of the tenants' database plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The tenant.
    pub tenant: String,
    /// Its database.
    pub database: String,
    /// Its user.
    pub user: String,
    /// What happens.
    pub action: Action,
}

impl Step {
    /// Whether the step deletes stored data.
    pub fn is_destructive(&self) -> bool {
        self.action == Action::Drop
    }

    /// The step as a plan line: a mark, a verb, what it touches, and a note.
    pub fn line(&self) -> String {
        let (mark, verb, what) = self.parts();
        let note = match self.action {
            Action::Drop => "  (deletes stored data)".to_owned(),
            Action::Keep => format!("  (tenant {} left the file; drop it with --allow-destructive)", self.tenant),
            _ => String::new(),
        };
        format!("{mark} {verb:<7} {what}{note}")
    }

    /// What the step does, as a phrase (`create database netdelta-a`).
    fn doing(&self) -> String {
        let (_, verb, what) = self.parts();
        format!("{verb} {what}")
    }

    fn parts(&self) -> (char, &'static str, String) {
        let (database, user) = (&self.database, &self.user);
        match self.action {
            Action::CreateDatabase => ('+', "create", format!("database {database}")),
            Action::CreateUser => ('+', "create", format!("database user {user}")),
            Action::SetPassword => ('~', "update", format!("password of database user {user}")),
            Action::Grant => ('~', "grant", format!("ALL on {database} only to {user}")),
            Action::Record => ('+', "record", format!("database {database} as seclab's")),
            Action::Drop => ('-', "drop", format!("database {database} and user {user}")),
            Action::Keep => ('=', "keep", format!("database {database} and user {user}")),
        }
    }
}

/// Each tenant's database on the server: whether it and its user are there as the file wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The tenant.
    pub tenant: String,
    /// Its database.
    pub database: String,
    /// `present` (database, user, password and grant as wanted), `missing` or `drifted`
    /// (external server); `present` or `pending` (in-cluster, by its setup Job).
    pub state: &'static str,
}

/// Why the tenants' databases could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The server's URL or a tenant's password could not be read.
    #[error("{0}")]
    Secret(String),
    /// The server refused or could not be reached.
    #[error("cannot connect to the tenant database server {url}: {source}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("the tenant database server refused to {doing}: {source}")]
    Statement {
        /// What seclab was doing.
        doing: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The generated passwords could not be read from the cluster.
    #[error("cannot read the tenants' password Secrets in namespace {namespace}: {source}")]
    Cluster {
        /// The namespace.
        namespace: String,
        /// The error.
        #[source]
        source: ClusterError,
    },
}

/// The tenants' databases the file wants, in its order.
pub fn wanted(lab: &Lab) -> Vec<Wanted> {
    let spec = lab.spec();
    spec.tenants
        .iter()
        .map(|tenant| {
            let db = spec.tenant_database_of(tenant);
            Wanted { tenant: tenant.name.clone(), database: db.name, user: db.user }
        })
        .collect()
}

/// Whether seclab reconciles `lab`'s tenant databases itself (an external server).
pub fn is_external(lab: &Lab) -> bool {
    lab.spec().tenant_database.as_ref().is_some_and(|server| server.mode == DatabaseMode::External)
}

/// A connection to the external server, with seclab's privileges.
pub struct Server {
    connection: MySqlConnection,
    options: MySqlConnectOptions,
}

impl Server {
    /// Connects to `lab`'s external server.
    pub async fn connect(lab: &Lab) -> Result<Self, DatabaseError> {
        let unset = || DatabaseError::Secret("`tenantDatabase.url` is not set; run `seclab validate`".to_owned());
        let server = lab.spec().tenant_database.as_ref().ok_or_else(unset)?;
        let url = server.url.as_ref().ok_or_else(unset)?;
        let url = url
            .resolve(&base_dir(lab))
            .map_err(|e| DatabaseError::Secret(format!("cannot read `tenantDatabase.url`: {}", one_line(&e))))?;
        let shown = redact_url(&url);
        let ca = server.tls_ca.as_ref().map(|ca| base_dir(lab).join(ca));
        let url = secured_url(&url, server.tls, ca.as_deref())
            .map_err(|message| DatabaseError::Secret(format!("tenantDatabase.url ({shown}): {message}")))?;
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|source| DatabaseError::Connect { url: shown.clone(), source })?
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::ZERO);
        let mut connection =
            options.connect().await.map_err(|source| DatabaseError::Connect { url: shown.clone(), source })?;
        // Strings are quoted by doubling quotes alone (see `quoted`): with backslashes
        // taken literally, whatever mode the server is set to.
        sqlx::raw_sql(LITERAL_BACKSLASHES)
            .execute(&mut connection)
            .await
            .map_err(|source| DatabaseError::Connect { url: shown, source })?;
        Ok(Self { connection, options })
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.connection.close().await;
    }

    /// The steps that make the server match `wanted` (with `passwords` by tenant; a tenant
    /// without one has none kept yet, so its user is created or set anew), and what else
    /// `lab` recorded there.
    pub async fn plan(
        &mut self,
        lab: &str,
        wanted: &[Wanted],
        passwords: &HashMap<String, String>,
        allow_destructive: bool,
    ) -> Result<Vec<Step>, DatabaseError> {
        let recorded = self.recorded(lab).await?;
        let mut steps = Vec::new();
        for want in wanted {
            let step = |action| Step {
                tenant: want.tenant.clone(),
                database: want.database.clone(),
                user: want.user.clone(),
                action,
            };
            if !self.database_exists(&want.database).await? {
                steps.push(step(Action::CreateDatabase));
            }
            if !self.user_exists(&want.user).await? {
                steps.push(step(Action::CreateUser));
                steps.push(step(Action::Grant));
            } else {
                let logs_in = match passwords.get(&want.tenant) {
                    Some(password) => self.logs_in(&want.user, password).await,
                    None => false,
                };
                if !logs_in {
                    steps.push(step(Action::SetPassword));
                }
                if !self.grant_is_exact(&want.user, &want.database).await? {
                    steps.push(step(Action::Grant));
                }
            }
            if recorded.get(&want.tenant) != Some(&(want.database.clone(), want.user.clone())) {
                steps.push(step(Action::Record));
            }
        }
        for (tenant, (database, user)) in recorded {
            if !wanted.iter().any(|w| w.tenant == tenant) {
                let action = if allow_destructive { Action::Drop } else { Action::Keep };
                steps.push(Step { tenant, database, user, action });
            }
        }
        Ok(steps)
    }

    /// Carries out `steps` in order (`Keep` does nothing).
    pub async fn apply(
        &mut self,
        lab: &str,
        steps: &[Step],
        passwords: &HashMap<String, String>,
    ) -> Result<(), DatabaseError> {
        for step in steps {
            let user = account(&step.user);
            let password = || {
                passwords.get(&step.tenant).map(|p| quoted(p)).ok_or_else(|| {
                    DatabaseError::Secret(format!("no password is kept for tenant {}'s database user", step.tenant))
                })
            };
            let statements = match step.action {
                Action::CreateDatabase => vec![format!("CREATE DATABASE IF NOT EXISTS {}", identifier(&step.database))],
                Action::CreateUser => vec![format!("CREATE USER IF NOT EXISTS {user} IDENTIFIED BY {}", password()?)],
                Action::SetPassword => vec![format!("ALTER USER {user} IDENTIFIED BY {}", password()?)],
                Action::Grant => vec![
                    format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {user}"),
                    format!("GRANT ALL PRIVILEGES ON {}.* TO {user}", identifier(&grant_pattern(&step.database))),
                ],
                Action::Record => vec![
                    "CREATE DATABASE IF NOT EXISTS seclab".to_owned(),
                    "CREATE TABLE IF NOT EXISTS seclab.tenant_databases (lab VARCHAR(63) NOT NULL, tenant VARCHAR(63) NOT NULL, database_name VARCHAR(64) NOT NULL, user_name VARCHAR(80) NOT NULL, PRIMARY KEY (lab, tenant))".to_owned(),
                    format!(
                        "REPLACE INTO seclab.tenant_databases VALUES ({}, {}, {}, {})",
                        quoted(lab),
                        quoted(&step.tenant),
                        quoted(&step.database),
                        quoted(&step.user)
                    ),
                ],
                Action::Drop => vec![
                    format!("DROP DATABASE IF EXISTS {}", identifier(&step.database)),
                    format!("DROP USER IF EXISTS {user}"),
                    format!(
                        "DELETE FROM seclab.tenant_databases WHERE lab = {} AND tenant = {}",
                        quoted(lab),
                        quoted(&step.tenant)
                    ),
                ],
                Action::Keep => Vec::new(),
            };
            for statement in statements {
                sqlx::raw_sql(&statement).execute(&mut self.connection).await.map_err(|source| {
                    // The statement may hold a password: the message names the step instead.
                    DatabaseError::Statement { doing: step.doing(), source }
                })?;
            }
        }
        Ok(())
    }

    /// `lab`'s tenants recorded on the server: database and user by tenant.
    async fn recorded(&mut self, lab: &str) -> Result<BTreeMap<String, (String, String)>, DatabaseError> {
        let table = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'seclab' AND TABLE_NAME = 'tenant_databases'";
        if self.count(table, &[], "read seclab.tenant_databases").await? == 0 {
            return Ok(BTreeMap::new());
        }
        let rows = sqlx::query("SELECT tenant, database_name, user_name FROM seclab.tenant_databases WHERE lab = ?")
            .bind(lab)
            .fetch_all(&mut self.connection)
            .await
            .map_err(refused("read seclab.tenant_databases"))?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), (r.get::<String, _>(1), r.get::<String, _>(2)))).collect())
    }

    /// The number `sql` counts, with `values` bound to its placeholders.
    async fn count(&mut self, sql: &str, values: &[&str], doing: &str) -> Result<i64, DatabaseError> {
        let query = values.iter().fold(sqlx::query(sql), |query, value| query.bind(*value));
        let row = query.fetch_one(&mut self.connection).await.map_err(refused(doing))?;
        row.try_get::<i64, _>(0).map_err(refused(doing))
    }

    async fn database_exists(&mut self, database: &str) -> Result<bool, DatabaseError> {
        let sql = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?";
        Ok(self.count(sql, &[database], "list databases").await? > 0)
    }

    async fn user_exists(&mut self, user: &str) -> Result<bool, DatabaseError> {
        let sql = "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = '%'";
        Ok(self.count(sql, &[user], "list users (it needs SELECT on mysql.user)").await? > 0)
    }

    /// Whether `user` holds every required privilege on `database` and nothing anywhere else.
    async fn grant_is_exact(&mut self, user: &str, database: &str) -> Result<bool, DatabaseError> {
        let grantee = format!("'{user}'@'%'");
        let elsewhere = [
            "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND PRIVILEGE_TYPE <> 'USAGE'",
            "SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ?",
            "SELECT COUNT(*) FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = ?",
        ];
        for sql in elsewhere {
            if self.count(sql, &[&grantee], "read privileges").await? > 0 {
                return Ok(false);
            }
        }
        let schema = sqlx::query(
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ?",
        )
        .bind(&grantee)
        .fetch_all(&mut self.connection)
        .await
        .map_err(refused("read privileges"))?;
        let pattern = grant_pattern(database);
        let mut held = Vec::new();
        for row in &schema {
            let (on, privilege, grantable): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            if on != pattern || grantable == "YES" {
                return Ok(false);
            }
            held.push(privilege);
        }
        Ok(REQUIRED.iter().all(|p| held.iter().any(|h| h == p)))
    }

    /// Whether `user` can log in with `password` (a connection of its own, closed at once).
    async fn logs_in(&self, user: &str, password: &str) -> bool {
        let options = self.options.clone().username(user).password(password).database("");
        match options.connect().await {
            Ok(connection) => {
                let _ = connection.close().await;
                true
            }
            Err(_) => false,
        }
    }
}

/// The passwords of `lab`'s tenants, where seclab has one: `env:`/`file:` values read now,
/// generated ones from the Secrets apply keeps (absent before the first apply), read with one
/// LIST per namespace.
pub async fn passwords(cluster: &Cluster, lab: &Lab) -> Result<HashMap<String, String>, DatabaseError> {
    let spec = lab.spec();
    let base = base_dir(lab);
    let mut found = HashMap::new();
    // The Secrets holding generated passwords, by namespace: Secret name to tenant.
    let mut kept: BTreeMap<&str, HashMap<String, &str>> = BTreeMap::new();
    for tenant in &spec.tenants {
        match &tenant.database.password {
            Some(source @ (SecretSource::Env(_) | SecretSource::File(_))) => {
                let password = source.resolve(&base).map_err(|e| {
                    DatabaseError::Secret(format!("tenant {}'s database password: {}", tenant.name, one_line(&e)))
                })?;
                found.insert(tenant.name.clone(), password);
            }
            _ => {
                let secret = tenant_password_secret(lab.name(), &tenant.name);
                kept.entry(spec.namespace_or_default(&tenant.namespace)).or_default().insert(secret, &tenant.name);
            }
        }
    }
    for (namespace, tenants) in kept {
        let names = tenants.keys().map(String::as_str).collect();
        let data = secret_data(cluster, namespace, &names)
            .await
            .map_err(|source| DatabaseError::Cluster { namespace: namespace.to_owned(), source })?;
        for (name, data) in data {
            let password = data["password"].as_str().and_then(|text| STANDARD.decode(text).ok());
            if let Some(password) = password.and_then(|bytes| String::from_utf8(bytes).ok()) {
                found.insert(tenants[&name].to_owned(), password);
            }
        }
    }
    Ok(found)
}

/// Plans and carries out the tenants' databases of `lab` on its external server; the steps
/// taken (none when the server matches the file).
pub async fn reconcile(cluster: &Cluster, lab: &Lab, allow_destructive: bool) -> Result<Vec<Step>, DatabaseError> {
    reconcile_wanted(cluster, lab, &wanted(lab), allow_destructive).await
}

/// Drops (with `allow_destructive`) or lists every database `lab` recorded: `destroy`.
pub async fn remove_all(cluster: &Cluster, lab: &Lab, allow_destructive: bool) -> Result<Vec<Step>, DatabaseError> {
    reconcile_wanted(cluster, lab, &[], allow_destructive).await
}

async fn reconcile_wanted(
    cluster: &Cluster,
    lab: &Lab,
    wanted: &[Wanted],
    allow_destructive: bool,
) -> Result<Vec<Step>, DatabaseError> {
    let passwords = passwords(cluster, lab).await?;
    let mut server = Server::connect(lab).await?;
    let steps = server.plan(lab.name(), wanted, &passwords, allow_destructive).await?;
    let result = server.apply(lab.name(), &steps, &passwords).await;
    server.close().await;
    result.map(|()| steps)
}

/// Plans without writing: `seclab plan`.
pub async fn plan(cluster: &Cluster, lab: &Lab, allow_destructive: bool) -> Result<Vec<Step>, DatabaseError> {
    let passwords = passwords(cluster, lab).await?;
    let mut server = Server::connect(lab).await?;
    let steps = server.plan(lab.name(), &wanted(lab), &passwords, allow_destructive).await;
    server.close().await;
    steps
}

/// Each tenant's database as the server holds it: `seclab status`.
pub async fn status(cluster: &Cluster, lab: &Lab) -> Result<Vec<Presence>, DatabaseError> {
    let steps = plan(cluster, lab, false).await?;
    Ok(wanted(lab)
        .into_iter()
        .map(|want| {
            let mine: Vec<Action> = steps.iter().filter(|s| s.tenant == want.tenant).map(|s| s.action).collect();
            let state = if mine.is_empty() {
                "present"
            } else if mine.contains(&Action::CreateDatabase) || mine.contains(&Action::CreateUser) {
                "missing"
            } else {
                "drifted"
            };
            Presence { tenant: want.tenant, database: want.database, state }
        })
        .collect())
}

/// Each tenant's database on an in-cluster server: `present` once the setup Job that the
/// file renders now has completed, else `pending`.
pub fn in_cluster_presence(lab: &Lab, status: &LabStatus) -> Vec<Presence> {
    let done = status
        .components
        .get("tenantDatabase")
        .into_iter()
        .flatten()
        .any(|state| state.key.kind == "Job" && state.readiness == Readiness::Ready);
    wanted(lab)
        .into_iter()
        .map(|want| Presence {
            tenant: want.tenant,
            database: want.database,
            state: if done { "present" } else { "pending" },
        })
        .collect()
}

fn refused(doing: &str) -> impl FnOnce(sqlx::Error) -> DatabaseError + '_ {
    move |source| DatabaseError::Statement { doing: doing.to_owned(), source }
}

/// `'user'@'%'`.
fn account(user: &str) -> String {
    format!("{}@'%'", quoted(user))
}

/// A name as a MySQL identifier (backquoted).
fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A database name as `GRANT` matches it: `_` and `%` are wildcards there, so they are escaped.
fn grant_pattern(database: &str) -> String {
    database.replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%")
}

/// Sets the session to take backslashes in strings literally (`NO_BACKSLASH_ESCAPES`), as the
/// setup Job's script does too.
const LITERAL_BACKSLASHES: &str =
    "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_BACKSLASH_ESCAPES')";

/// A value as a MySQL string literal: its quotes doubled, every other character as it is.
/// That reads the same in every session of [`Server`] (`NO_BACKSLASH_ESCAPES`); backslash
/// escapes would not (`\'` ends the string there).
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_names_are_escaped_for_mysql() {
        assert_eq!(quoted("it's a \\ test\n"), "'it''s a \\ test\n'");
        assert_eq!(identifier("a`b"), "`a``b`");
        assert_eq!(grant_pattern("net_delta%x"), "net\\_delta\\%x");
        assert_eq!(account("netdelta-a"), "'netdelta-a'@'%'");
    }

    #[test]
    fn only_a_drop_is_destructive_and_a_kept_database_says_how_to_drop_it() {
        let step = |action| Step { tenant: "t".into(), database: "d".into(), user: "u".into(), action };
        assert!(step(Action::Drop).is_destructive());
        assert!(!step(Action::Keep).is_destructive());
        assert!(step(Action::Keep).line().contains("--allow-destructive"));
        assert!(step(Action::Drop).line().starts_with("- drop"));
    }
}
