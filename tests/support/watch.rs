//! A running `seclab watch` on a test lab: its log, its endpoints, a clean stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lab::TestLab;

/// A running `seclab watch`, killed when dropped.
pub struct Watch {
    pub child: Child,
    pub address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    /// Starts `seclab watch` on `lab` with `args`, and waits until its endpoints answer.
    pub fn start(lab: &TestLab, args: &[&str], env: &[(&str, &str)]) -> Self {
        lab.grant(&lab.file());
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("seclab"));
        command
            .arg("--file")
            .arg(lab.file())
            .arg("--kubeconfig")
            .arg(&lab.kubeconfig)
            .arg("watch")
            .args(args)
            .env("BARBICAN_DB_PASSWORD", &lab.password)
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .env_remove("SECLAB_TEMPLATES")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in lab.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(env.iter().copied()) {
            command.env(name, value);
        }
        let templates = lab.dir.path().join("templates");
        if templates.is_dir() {
            command.arg("--templates").arg(templates);
        }
        let mut child = command.spawn().expect("seclab watch starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sender, address) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("endpoints on http://").nth(1) {
                    sender.send(rest.split(';').next().unwrap().parse::<SocketAddr>().unwrap()).ok();
                }
                kept.lock().unwrap().push(line);
            }
        });
        let address = address.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!("seclab watch did not start:\n{}", log.lock().unwrap().join("\n"));
        });
        Self { child, address, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// A GET on the endpoints, by the address they listen on: status code and body.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{authorization}Connection: close\r\n\r\n", self.address);
        let response = self.raw(&request);
        let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (code, body)
    }

    /// Sends `request` as it is and returns the whole response.
    pub fn raw(&self, request: &str) -> String {
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&self) {
        let ok = eventually(Duration::from_secs(120), || self.get("/readyz", None).0 == 200);
        assert!(ok, "watch never became ready:\n{}", self.log());
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        // SAFETY: sends a signal to the child process this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("seclab watch did not stop within 30 s of SIGTERM:\n{}", self.log());
    }

    /// One value of the metrics, summed over the samples whose labels include `labels`.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (code, body) = self.get("/metrics", None);
        assert_eq!(code, 200, "{body}");
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text");
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
