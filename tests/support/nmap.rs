//! Real nmap runs against loopback services that the test starts itself.
//! Only 127.0.0.0/8 is ever scanned.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// A TCP service on a loopback address that greets every client with `banner`.
pub struct Service {
    stop: Arc<AtomicBool>,
    address: (Ipv4Addr, u16),
    handle: Option<thread::JoinHandle<()>>,
}

impl Service {
    /// Listens on `address:port` (loopback only) and sends `banner` to each client.
    pub fn start(address: Ipv4Addr, port: u16, banner: &'static str) -> Self {
        assert!(address.is_loopback(), "tests only listen on and scan loopback addresses");
        // A port a previous service of the same test just closed may take a moment to free.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind((address, port)) {
                Ok(listener) => break listener,
                Err(e) if std::time::Instant::now() > deadline => panic!("cannot listen on {address}:{port}: {e}"),
                Err(_) => thread::sleep(std::time::Duration::from_millis(50)),
            }
        };
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        use std::io::Write;
                        let _ = stream.write_all(banner.as_bytes());
                    }
                    Err(_) => thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Self { stop, address: (address, port), handle: Some(handle) }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.address);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// A port free on every 127.0.0.x address the tests use, never handed out twice in
/// one test process (tests run in parallel).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let free = (1..=6).all(|last| TcpListener::bind((Ipv4Addr::new(127, 0, 0, last), port)).is_ok());
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if free && !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The path of a program from Debian's packages; fails the test loudly when missing.
pub fn program(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("`{name}` is not installed: scripts/test installs it (apt-get install {name})"))
}

/// Runs a real nmap connect scan with service detection of `ports` on loopback `targets`,
/// writing XML to `out`.
pub fn scan(targets: &[&str], ports: &[u16], out: &Path) {
    for target in targets {
        let first: Ipv4Addr = target.split(['-', '/']).next().unwrap().parse().expect("an IPv4 loopback target");
        assert!(!target.contains('/') || target.ends_with("/22") || target.ends_with("/24"), "a small range: {target}");
        assert!(first.is_loopback(), "tests only scan loopback addresses, not {target}");
    }
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let status = Command::new(program("nmap"))
        .args(["-sT", "-sV", "--version-intensity", "0", "-Pn", "-n", "-T4", "-p", &ports.join(","), "-oX"])
        .arg(out)
        .args(targets)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("nmap runs");
    assert!(status.success(), "nmap failed: {status}");
}
