//! A real PostgreSQL server (Debian's) on a loopback port in a temporary directory,
//! stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server with one database for the test.
pub struct Postgres {
    child: Child,
    data: PathBuf,
    _dir: tempfile::TempDir,
    /// `postgres://...` of the test's database.
    pub url: String,
}

/// The directory holding initdb and postgres (Debian's layout), or PATH.
fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| super::nmap::program(name))
}

/// Runs a PostgreSQL program, as the `postgres` user when this process is root
/// (PostgreSQL refuses to run as root).
fn command(name: &str) -> Command {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin(name));
        command
    } else {
        Command::new(bin(name))
    }
}

impl Postgres {
    /// Initialises and starts a server; fails the test loudly when PostgreSQL is missing.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that also speaks TLS with `certificate` and `key` (PEM).
    pub fn start_tls(certificate: &str, key: &str) -> Self {
        Self::start_with(Some((certificate, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut settings = Vec::new();
        if let Some((certificate, key)) = tls {
            std::fs::write(dir.path().join("server.crt"), certificate).unwrap();
            std::fs::write(dir.path().join("server.key"), key).unwrap();
            // PostgreSQL reads a key its own user alone can read.
            std::fs::set_permissions(dir.path().join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
            for (name, file) in [("ssl_cert_file", "server.crt"), ("ssl_key_file", "server.key")] {
                settings.extend(["-c".to_owned(), format!("{name}={}", dir.path().join(file).display())]);
            }
            settings.extend(["-c".to_owned(), "ssl=on".to_owned()]);
        }
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
        let status = command("initdb")
            .args(["-A", "trust", "-U", "seclab", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb runs: PostgreSQL comes from Debian's postgresql package");
        assert!(status.success(), "initdb failed");
        let port = super::nmap::free_port();
        let child = command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-k"])
            .arg(dir.path())
            .args(&settings)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The server accepts connections a moment before it accepts logins.
        std::thread::sleep(Duration::from_millis(300));
        Self { child, data, _dir: dir, url: format!("postgres://seclab@127.0.0.1:{port}/postgres") }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // The child may be `runuser`, not the server: stop the server by its data directory.
        let _ =
            command("pg_ctl").args(["stop", "-m", "fast", "-w", "-D"]).arg(&self.data).stdout(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
