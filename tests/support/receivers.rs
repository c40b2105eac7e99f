//! Real HTTP and SMTP servers on loopback that record the alerts they receive.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A receiver process; stopped when dropped.
pub struct Receiver {
    child: Child,
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl Receiver {
    /// Starts `receivers.py http` or `receivers.py smtp`, recording into `dir`.
    pub fn start(kind: &str, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/receivers.py");
        let child =
            Command::new("python3").arg(script).arg(kind).arg(dir).spawn().expect("python3 runs the test receivers");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port_file = dir.join("port");
        while !port_file.exists() {
            assert!(Instant::now() < deadline, "the {kind} receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let port = std::fs::read_to_string(&port_file).unwrap().trim().parse().unwrap();
        Self { child, dir: dir.to_owned(), port }
    }

    /// What it received so far, oldest first.
    pub fn received(&self) -> Vec<String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "eml")))
            .collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }

    /// Waits until it has received `count` messages (or fails the test after 20 s).
    pub fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() > deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
