//! A real MariaDB server (Debian's) on a loopback port in a temporary directory, with its
//! general query log on, stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The root password of every test server.
pub const ROOT_PASSWORD: &str = "mariadb-root-pw-5e1d";

/// A running server whose `root` logs in from 127.0.0.1 with [`ROOT_PASSWORD`].
pub struct MariaDb {
    child: Child,
    dir: tempfile::TempDir,
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// `mysql://root:...@127.0.0.1:<port>`.
    pub url: String,
}

fn root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

impl MariaDb {
    /// Initialises and starts a server; fails the test loudly when MariaDB is missing.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that speaks TLS only, with `certificate` and `key` (PEM).
    pub fn start_tls(certificate: &str, key: &str) -> Self {
        Self::start_with(Some((certificate, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Vec::new();
        if let Some((certificate, key)) = tls {
            std::fs::write(dir.path().join("server.crt"), certificate).unwrap();
            std::fs::write(dir.path().join("server.key"), key).unwrap();
            settings.push(format!("--ssl-cert={}", dir.path().join("server.crt").display()));
            settings.push(format!("--ssl-key={}", dir.path().join("server.key").display()));
            settings.push("--require-secure-transport=ON".to_owned());
        }
        let data = dir.path().join("data");
        // Servers started at once would share /tmp, where their temporary tables collide.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let user = if root() { "root".to_owned() } else { std::env::var("USER").unwrap_or_default() };
        let status = Command::new(super::nmap::program("mariadb-install-db"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db runs: MariaDB comes from Debian's mariadb-server package");
        let errors: Vec<&str> =
            std::str::from_utf8(&status.stdout).unwrap_or_default().lines().filter(|l| l.contains("ERROR")).collect();
        assert!(status.status.success(), "mariadb-install-db failed: {errors:?}");
        let port = super::nmap::free_port();
        let socket = dir.path().join("mysqld.sock");
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--user={user}"))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()))
            .arg(format!("--general-log-file={}", dir.path().join("general.log").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--general-log=1",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .args(&settings)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !socket.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "MariaDB did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let server = Self { child, dir, port, url: format!("mysql://root:{ROOT_PASSWORD}@127.0.0.1:{port}") };
        server.sql_over_socket(&format!(
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}'; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        ));
        server
    }

    /// Runs `sql` as root over the server's socket.
    fn sql_over_socket(&self, sql: &str) {
        let output = Command::new(super::nmap::program("mariadb"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.path().join("mysqld.sock").display()))
            .args(["--user=root", "-e", sql])
            .output()
            .unwrap();
        assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// The general query log so far.
    pub fn general_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("general.log")
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
