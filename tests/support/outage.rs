//! An outage of the API server for one client: a TCP relay on loopback in front of the test
//! cluster's API server that the test can take down (every connection cut, new ones
//! refused) and bring back, without stopping the server other tests use.

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The relay; stops when dropped.
pub struct Relay {
    /// The relay's port on 127.0.0.1.
    pub port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays 127.0.0.1:<port> to `target` (a loopback address).
    pub fn start(target: SocketAddr) -> Self {
        assert!(target.ip().is_loopback(), "the relay only reaches loopback");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, stop) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (is_up, stopping, connections) = (up.clone(), stop.clone(), open.clone());
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !stopping.load(Ordering::Relaxed) {
                match (&listener, is_up.load(Ordering::Relaxed)) {
                    // Down: no listener, so connections are refused.
                    (Some(_), false) => listener = None,
                    (None, true) => listener = TcpListener::bind(("127.0.0.1", port)).ok(),
                    _ => {}
                }
                let Some(accepting) = &listener else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                accepting.set_nonblocking(true).unwrap();
                match accepting.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(target) else { continue };
                        let mut kept = connections.lock().unwrap();
                        // Accepted just as the relay went down: cut at once, as `down` cut
                        // the others (it holds this lock while it flips the switch).
                        if !is_up.load(Ordering::Relaxed) {
                            client.shutdown(Shutdown::Both).ok();
                            server.shutdown(Shutdown::Both).ok();
                            continue;
                        }
                        kept.push(client.try_clone().unwrap());
                        kept.push(server.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => {}
                }
            }
        });
        Self { port, up, stop, open }
    }

    /// Cuts every connection and refuses new ones, as a stopped API server does.
    pub fn down(&self) {
        let mut open = self.open.lock().unwrap();
        self.up.store(false, Ordering::Relaxed);
        for stream in open.drain(..) {
            stream.shutdown(Shutdown::Both).ok();
        }
    }

    /// Accepts connections again.
    pub fn up(&self) {
        self.up.store(true, Ordering::Relaxed);
    }

    /// A copy of `kubeconfig` in `dir` that reaches the server through the relay.
    pub fn kubeconfig(&self, kubeconfig: &Path, target: SocketAddr, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(kubeconfig).unwrap();
        let server = format!("https://127.0.0.1:{}", target.port());
        assert!(text.contains(&server), "the kubeconfig names {server}");
        let path = dir.join("relayed.kubeconfig");
        std::fs::write(&path, text.replace(&server, &format!("https://127.0.0.1:{}", self.port))).unwrap();
        path
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.down();
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` on a thread of its own until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        std::io::copy(&mut from, &mut to).ok();
        to.shutdown(Shutdown::Write).ok();
    });
}
