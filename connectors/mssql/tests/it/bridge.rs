//! A TDS server for the tests: `pysqlbridge` (PyPI), a read-only SQL Server stand-in that serves
//! CSV/JSON files and HTTP JSON endpoints as tables, with TLS and SQL logins, started on a free
//! port. Tables whose rows change between polls are served from [`JsonServer`], a tiny HTTP server
//! of this process, with a short cache lifetime.
//!
//! The Python comes from `VIGIE_TEST_PYTHON` (set by `scripts/test`); without it the tests make
//! the virtual environment `target/test-venv` themselves, so `cargo test -p vigie-mssql` works
//! alone.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const USER: &str = "vigie";
pub const PASSWORD: &str = "Wug-0rion!pw";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The Python of the test venv, with pysqlbridge installed.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("VIGIE_TEST_PYTHON")
                && !p.is_empty()
            {
                return PathBuf::from(p);
            }
            let venv = workspace().join("target/test-venv");
            let py = venv.join("bin/python");
            let ready = Command::new(&py)
                .args(["-c", "import pysqlbridge"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ready {
                eprintln!(
                    "[vigie-mssql tests] creating {} with pysqlbridge",
                    venv.display()
                );
                let ok = Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "python3 -m venv failed");
                let ok = Command::new(&py)
                    .args(["-m", "pip", "install", "-q", "pysqlbridge"])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "pip install pysqlbridge failed");
            }
            py
        })
        .clone()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running pysqlbridge.
pub struct Bridge {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    config: PathBuf,
}

impl Bridge {
    /// Serves `tables` (pysqlbridge's `tables` entries; relative paths are under the fixtures).
    pub fn start(tables: Value) -> Bridge {
        Bridge::start_on(free_port(), tables)
    }

    pub fn start_on(port: u16, tables: Value) -> Bridge {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("vigie_test_mssql_{}_{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut tables = tables;
        if let Value::Array(items) = &mut tables {
            for t in items.iter_mut() {
                for key in ["csv", "json"] {
                    if let Some(Value::String(p)) = t.get(key).cloned() {
                        let abs = fixtures().join(&p);
                        t[key] = json!(abs.to_string_lossy());
                    }
                }
            }
        }
        let config = dir.join("bridge.json");
        let body = json!({
            "logins": [{"user": USER, "password": "${env:VIGIE_BRIDGE_PW}"}],
            "tables": tables,
        });
        std::fs::write(&config, body.to_string()).expect("config written");
        let mut bridge = Bridge {
            child: None,
            port,
            dir,
            config,
        };
        bridge.spawn();
        bridge
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("bridge.log")).expect("log file");
        let child = Command::new(python())
            .args(["-m", "pysqlbridge", "--config"])
            .arg(&self.config)
            .args(["--port", &self.port.to_string()])
            .env("VIGIE_BRIDGE_PW", PASSWORD)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("pysqlbridge starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(self.dir.join("bridge.log")).unwrap_or_default();
            if text.contains("listening on") {
                break;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("pysqlbridge exited ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "pysqlbridge did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "mssql://{USER}:{}@127.0.0.1:{}/{database}?encrypt=required&trust_server_certificate=true&connect_timeout=5&query_timeout=20",
            PASSWORD.replace('!', "%21"),
            self.port
        )
    }

    /// Stops the server (the port stays ours: nothing else is expected to take it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same tables.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bridge.log")).unwrap_or_default()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A minimal HTTP server answering `GET /NAME.json` with the JSON set for NAME.
#[derive(Clone)]
pub struct JsonServer {
    pub port: u16,
    docs: Arc<Mutex<HashMap<String, Value>>>,
}

impl JsonServer {
    pub fn start() -> JsonServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let docs: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let shared = docs.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let docs = shared.clone();
                std::thread::spawn(move || serve(stream, &docs));
            }
        });
        JsonServer { port, docs }
    }

    pub fn set(&self, name: &str, rows: Value) {
        self.docs
            .lock()
            .expect("lock")
            .insert(name.to_owned(), rows);
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}.json", self.port)
    }

    /// A pysqlbridge table entry served from here, refreshed after `ttl` seconds.
    pub fn table(&self, name: &str, ttl: f64) -> Value {
        json!({"name": name, "http": {"url": self.url(name), "ttl": ttl, "records": "array"}})
    }
}

fn serve(mut stream: TcpStream, docs: &Mutex<HashMap<String, Value>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let path = first.split_whitespace().nth(1).unwrap_or("/");
    let name = path
        .trim_start_matches('/')
        .split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches(".json");
    let doc = docs.lock().expect("lock").get(name).cloned();
    let (status, body) = match doc {
        Some(v) => ("200 OK", v.to_string()),
        None => ("404 Not Found", "{}".to_owned()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
