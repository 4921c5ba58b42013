//! The real peers: aiosmtpd (PyPI) in a Python venv as the SMTP server, and a small HTTP/1.1
//! server on a Tokio listener standing for the SMS gateway and the webhooks.
//!
//! The Python comes from `VIGIE_TEST_PYTHON` (set by `scripts/test`); without it the tests make
//! or complete the virtual environment `target/test-venv` themselves, so
//! `cargo test -p vigie-notify` works alone.

use std::io::{BufRead, BufReader};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_notify::settings::{NotifySettings, RetryPolicy, SmtpSettings, WorkerTuning};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python of the test venv, with aiosmtpd installed.
pub(crate) fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let has_aiosmtpd = |py: &Path| {
                Command::new(py)
                    .args(["-c", "import aiosmtpd"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if let Ok(p) = std::env::var("VIGIE_TEST_PYTHON")
                && !p.is_empty()
                && has_aiosmtpd(Path::new(&p))
            {
                return PathBuf::from(p);
            }
            let venv = workspace().join("target/test-venv");
            let py = venv.join("bin/python");
            if !has_aiosmtpd(&py) {
                if !py.exists() {
                    eprintln!("[vigie-notify tests] creating {}", venv.display());
                    let ok = Command::new("python3")
                        .args(["-m", "venv"])
                        .arg(&venv)
                        .status()
                        .is_ok_and(|s| s.success());
                    assert!(ok, "python3 -m venv failed");
                }
                eprintln!("[vigie-notify tests] pip install aiosmtpd");
                let ok = Command::new(&py)
                    .args(["-m", "pip", "install", "-q", "aiosmtpd"])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "pip install aiosmtpd failed");
            }
            py
        })
        .clone()
}

pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running aiosmtpd; every accepted message as the JSON line `tests/smtp_sink.py` writes.
pub(crate) struct Smtp {
    child: Child,
    pub(crate) port: u16,
    pub(crate) received: Arc<Mutex<Vec<Value>>>,
}

impl Smtp {
    pub(crate) fn start() -> Smtp {
        Smtp::start_on(free_port(), Arc::new(Mutex::new(Vec::new())))
    }

    /// Starts on `port`, appending to `received` (so a restarted server keeps one record).
    pub(crate) fn start_on(port: u16, received: Arc<Mutex<Vec<Value>>>) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        for _ in 0..50 {
            let mut child = Command::new(python())
                .arg(&script)
                .arg(port.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start aiosmtpd");
            let stdout = child.stdout.take().expect("stdout");
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let sink = received.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if v.get("ready").is_some() {
                        let _ = ready_tx.send(());
                    } else {
                        sink.lock().unwrap().push(v);
                    }
                }
            });
            if ready_rx.recv_timeout(Duration::from_secs(20)).is_ok() {
                return Smtp {
                    child,
                    port,
                    received,
                };
            }
            // The port may not be free again yet (a restart): try again.
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub(crate) fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the HTTP peer received.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

type Answer = dyn Fn(usize, &Request) -> (u16, String) + Send + Sync;

/// A local HTTP/1.1 server: answers each request with `answer(n, request)` (n from 0).
pub(crate) struct HttpPeer {
    pub(crate) port: u16,
    pub(crate) requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpPeer {
    pub(crate) async fn start(
        answer: impl Fn(usize, &Request) -> (u16, String) + Send + Sync + 'static,
    ) -> HttpPeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    break;
                };
                let seen = seen.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    // One request per connection (the answer says `Connection: close`).
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let method = first.next().unwrap_or_default().to_owned();
                    let path = first.next().unwrap_or_default().to_owned();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                        .collect();
                    let length = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = buf[head_end + 4..].to_vec();
                    while body.len() < length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request = Request {
                        method,
                        path,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(request.clone());
                        seen.len() - 1
                    };
                    let (status, body) = answer(n, &request);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        HttpPeer {
            port,
            requests,
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh store (kept alive with its database).
pub(crate) struct Db {
    _db: TestDb,
    pub(crate) store: Store,
}

pub(crate) async fn db() -> Db {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    Db { _db: db, store }
}

/// Settings for fast tests: short back-off and poll.
pub(crate) fn settings(smtp_url: Option<String>) -> NotifySettings {
    NotifySettings {
        smtp: smtp_url.map(|u| SmtpSettings::new(u, "Vigie <vigie@example.org>")),
        sms: None,
        webhooks: Vec::new(),
        retry: RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(50),
            max: Duration::from_millis(300),
        },
        worker: WorkerTuning {
            poll_interval: Duration::from_millis(50),
            ..WorkerTuning::default()
        },
    }
}

/// Waits until `check` holds, or fails after `secs`.
pub(crate) async fn until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The state and attempts of outbox row `id`.
pub(crate) async fn state(store: &Store, id: i64) -> (String, i32, Option<String>) {
    let d = vigie_notify::admin::get(store, id).await.unwrap().unwrap();
    (d.line.state, d.line.attempts, d.line.last_error)
}

/// How many rows are in `state`.
pub(crate) async fn count_in(store: &Store, state: &str) -> i64 {
    vigie_notify::admin::counts(store)
        .await
        .unwrap()
        .into_iter()
        .find(|(s, _)| s == state)
        .map_or(0, |(_, n)| n)
}
