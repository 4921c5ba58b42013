//! A stand-in for the hub's `POST /api/v1/agent/report`, on std's TcpListener (optionally with
//! rustls): HTTP/1.1 with keep-alive, the hub's status codes and a JSON body, so the agent sees
//! what it would see from the real hub on the wire. It can be stopped and restarted on the same
//! port to play an outage.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use vigie_agent::report::Report;

/// What the hub answers to the next requests.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// 202 with the id and, when set, `fast`.
    Accept { fast: Option<bool> },
    /// That status with a JSON error body; nothing stored.
    Status(u16),
}

/// An accepted report and how it came.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) authorization: Option<String>,
    pub(crate) path: String,
    pub(crate) content_type: Option<String>,
    pub(crate) report: Report,
    pub(crate) at: Instant,
}

#[derive(Debug)]
struct State {
    answer: Answer,
    received: Vec<Received>,
    requests: usize,
}

pub(crate) struct FakeHub {
    pub(crate) addr: SocketAddr,
    state: Arc<Mutex<State>>,
    tls: Option<Arc<ServerConfig>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub(crate) fn tls_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tls")
}

pub(crate) fn server_tls() -> Arc<ServerConfig> {
    let dir = tls_dir();
    let certs = vec![CertificateDer::from_pem_file(dir.join("server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

impl FakeHub {
    pub(crate) fn start(tls: Option<Arc<ServerConfig>>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let state = Arc::new(Mutex::new(State {
            answer: Answer::Accept { fast: None },
            received: Vec::new(),
            requests: 0,
        }));
        FakeHub::serve(listener, state, tls)
    }

    fn serve(
        listener: TcpListener,
        state: Arc<Mutex<State>>,
        tls: Option<Arc<ServerConfig>>,
    ) -> FakeHub {
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, tls, stop) = (state.clone(), tls.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(listener, state, tls, stop))
        };
        FakeHub {
            addr,
            state,
            tls,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener and every connection: the agent sees connection refused.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Listens again on the same port, keeping what was received.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebind {}: {e}", self.addr);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        *self = FakeHub::serve(listener, self.state.clone(), self.tls.clone());
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub(crate) fn set_answer(&self, answer: Answer) {
        self.state.lock().unwrap().answer = answer;
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every request, refused ones included.
    pub(crate) fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    tls: Option<Arc<ServerConfig>>,
    stop: Arc<AtomicBool>,
) {
    listener.set_nonblocking(true).unwrap();
    let mut conns = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, _)) => {
                let (state, tls, stop) = (state.clone(), tls.clone(), stop.clone());
                conns.push(std::thread::spawn(move || {
                    tcp.set_nonblocking(false).unwrap();
                    tcp.set_read_timeout(Some(Duration::from_millis(25)))
                        .unwrap();
                    match tls {
                        None => connection(tcp, &state, &stop),
                        Some(cfg) => {
                            let conn = ServerConnection::new(cfg).unwrap();
                            connection(StreamOwned::new(conn, tcp), &state, &stop);
                        }
                    }
                }));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    drop(listener);
    for c in conns {
        let _ = c.join();
    }
}

/// Serves requests on one connection until the client closes it or the hub stops. A request
/// read in full is always answered; a partial one is dropped with the connection.
fn connection<S: Read + Write>(mut stream: S, state: &Mutex<State>, stop: &AtomicBool) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let header = |name: &str| {
                head.lines().skip(1).find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let body = buf[end + 4..end + 4 + length].to_vec();
                buf.drain(..end + 4 + length);
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                let path = request_line
                    .split(' ')
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let (status, answer) = handle(
                    state,
                    &request_line,
                    path,
                    header("authorization"),
                    header("content-type"),
                    &body,
                );
                let reason = match status {
                    202 => "Accepted",
                    401 => "Unauthorized",
                    404 => "Not Found",
                    503 => "Service Unavailable",
                    _ => "Whatever",
                };
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                if stream
                    .write_all(response.as_bytes())
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                continue;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn handle(
    state: &Mutex<State>,
    request_line: &str,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: &[u8],
) -> (u16, String) {
    let mut s = state.lock().unwrap();
    s.requests += 1;
    if !request_line.starts_with("POST ") || path != "/api/v1/agent/report" {
        return (404, r#"{"error":"no such route"}"#.into());
    }
    match s.answer.clone() {
        Answer::Status(code) => (code, format!(r#"{{"error":"status {code} on purpose"}}"#)),
        Answer::Accept { fast } => {
            let report: Report = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return (400, format!(r#"{{"error":{:?}}}"#, e.to_string())),
            };
            let id = report.id.clone();
            s.received.push(Received {
                authorization,
                path,
                content_type,
                report,
                at: Instant::now(),
            });
            let answer = match fast {
                Some(f) => format!(r#"{{"id":{id:?},"fast":{f}}}"#),
                None => format!(r#"{{"id":{id:?}}}"#),
            };
            (202, answer)
        }
    }
}
