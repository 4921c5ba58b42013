//! The test harness: starts the real `vigie` binary on a fresh database of the suite's backend and
//! talks to it over HTTP, as a user or a tool would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use vigie_core::testing::TestDb;

pub(crate) const VIGIE: &str = env!("CARGO_BIN_EXE_vigie");

/// A database and the environment every `vigie` command of a test runs with.
pub(crate) struct Env {
    pub(crate) db: TestDb,
    pub(crate) config: Option<PathBuf>,
}

impl Env {
    pub(crate) async fn new() -> Env {
        Env {
            db: TestDb::create().await.expect("test database"),
            config: None,
        }
    }

    /// Writes a configuration file in the test's directory and uses it from now on.
    pub(crate) fn with_config(mut self, toml: &str) -> Env {
        let path = self.db.dir.join("vigie.toml");
        std::fs::write(&path, toml).expect("config written");
        self.config = Some(path);
        self
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.db.dir
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(VIGIE);
        cmd.env_clear()
            .env("VIGIE_DATABASE_URL", &self.db.url)
            .env("VIGIE_DATA_DIR", self.db.dir.join("data"))
            .env("VIGIE_HTTP_LISTEN", "127.0.0.1:0")
            .env("VIGIE_SYSLOG_LISTEN", "127.0.0.1:0")
            .env("VIGIE_LOG", "info")
            .kill_on_drop(true);
        if let Some(config) = &self.config {
            cmd.env("VIGIE_CONFIG", config);
        }
        cmd
    }

    /// Runs a `vigie` command to completion: (exit code, stdout, stderr).
    pub(crate) async fn run(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("vigie runs");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input
                .write_all(text.as_bytes())
                .await
                .expect("stdin written");
        }
        drop(input);
        let out = child.wait_with_output().await.expect("vigie ends");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Creates a user of `role` and returns a token of theirs.
    pub(crate) async fn token(&self, login: &str, role: &str) -> String {
        let (code, _, err) = self
            .run(
                &[
                    "user",
                    "create",
                    "--login",
                    login,
                    "--role",
                    role,
                    "--password-stdin",
                ],
                Some("a-long-enough-password\n"),
            )
            .await;
        assert_eq!(code, 0, "user create: {err}");
        let (code, out, err) = self.run(&["token", "create", "--login", login], None).await;
        assert_eq!(code, 0, "token create: {err}");
        let token = out.trim().to_owned();
        assert!(token.starts_with("vgt_") && !token.contains('\n'), "{out}");
        token
    }

    /// Starts `vigie serve` and waits until it answers `/readyz`.
    pub(crate) async fn serve(&self) -> Hub {
        let mut cmd = self.command();
        cmd.arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("vigie serve starts");
        let (lines, mut rx) = mpsc::unbounded_channel::<String>();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if std::env::var_os("TEST_LOG").is_some() {
                        eprintln!("[vigie] {line}");
                    }
                    let _ = lines.send(line);
                }
            });
        }
        let pattern = regex::Regex::new(r"listening on http://(\S+)").expect("regex");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut output = Vec::new();
        let address = loop {
            let line = tokio::time::timeout_at(deadline.into(), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("vigie serve did not start:\n{}", output.join("\n")))
                .unwrap_or_else(|| panic!("vigie serve exited:\n{}", output.join("\n")));
            let plain = strip_ansi(&line);
            if let Some(c) = pattern.captures(&plain) {
                output.push(plain.clone());
                break c[1].to_owned();
            }
            output.push(plain);
        };
        let hub = Hub {
            child,
            address,
            output,
            lines: rx,
        };
        for _ in 0..200 {
            if hub.get("/readyz", None).await.status == 200 {
                return hub;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("vigie never became ready");
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running hub.
pub(crate) struct Hub {
    child: Child,
    pub(crate) address: String,
    /// Lines printed so far (stdout and stderr), collected by [`Hub::output`].
    output: Vec<String>,
    lines: mpsc::UnboundedReceiver<String>,
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The fields named by a 4xx JSON error.
    pub(crate) fn problem_fields(&self) -> Vec<String> {
        self.json()["problems"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Hub {
    /// Everything the hub printed so far.
    pub(crate) fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.output.push(strip_ansi(&line));
        }
        self.output.join("\n")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Answer {
        self.request_with(method, path, token, content_type, &[], body)
            .await
    }

    /// A request with extra headers (`Cookie`, `Accept-Language`).
    pub(crate) async fn request_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        extra: &[(&str, String)],
        body: &[u8],
    ) -> Answer {
        // A refused connection (the hub is stopping) is an answer with status 0.
        let Ok(mut stream) = TcpStream::connect(&self.address).await else {
            return Answer {
                status: 0,
                headers: Vec::new(),
                body: String::new(),
            };
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        // The server may answer (413) before reading a large body: ignore a broken pipe.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        parse_answer(&raw)
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request("GET", path, token, None, b"").await
    }

    pub(crate) async fn post_json(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        self.request(
            "POST",
            path,
            token,
            Some("application/json"),
            body.as_bytes(),
        )
        .await
    }

    /// Sends SIGTERM and waits for the process to end; returns its exit code and output.
    pub(crate) async fn stop(self) -> (i32, String) {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success());
        self.stop_after_signal().await
    }

    /// Waits for a process already told to stop.
    pub(crate) async fn stop_after_signal(mut self) -> (i32, String) {
        let code = tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .expect("vigie stops within 40 s")
            .expect("wait")
            .code()
            .unwrap_or(-1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let output = self.output();
        (code, output)
    }
}

fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A browser without JavaScript: keeps cookies, follows nothing by itself, reads the CSRF token
/// of the last page it got.
pub(crate) struct Browser<'a> {
    hub: &'a Hub,
    cookies: Vec<(String, String)>,
    pub(crate) csrf: String,
    pub(crate) lang: &'static str,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(hub: &'a Hub) -> Browser<'a> {
        Browser {
            hub,
            cookies: Vec::new(),
            csrf: String::new(),
            lang: "en",
        }
    }

    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(k, _)| k != name);
        self.cookies.push((name.to_owned(), value.to_owned()));
    }

    fn remember(&mut self, answer: &Answer) {
        for (k, v) in &answer.headers {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(k, _)| k != name);
                let removed = v.contains("Max-Age=0") || value.is_empty();
                if !removed {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        if let Some(token) = hidden_value(&answer.body, "_csrf") {
            self.csrf = token;
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: &[u8]) -> Answer {
        let mut extra = vec![("Accept-Language", self.lang.to_owned())];
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            extra.push(("Cookie", jar.join("; ")));
        }
        let content_type = (method == "POST").then_some("application/x-www-form-urlencoded");
        let answer = self
            .hub
            .request_with(method, path, None, content_type, &extra, body)
            .await;
        self.remember(&answer);
        answer
    }

    pub(crate) async fn get(&mut self, path: &str) -> Answer {
        self.send("GET", path, b"").await
    }

    /// Posts a form with the current CSRF token added.
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no CSRF token unless given).
    pub(crate) async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, body.as_bytes()).await
    }

    /// Logs in with a password: the login page, then the form. Returns the form's answer.
    pub(crate) async fn login(&mut self, login: &str, password: &str) -> Answer {
        let page = self.get("/login").await;
        assert_eq!(page.status, 200, "{}", page.body);
        self.post(
            "/login",
            &[("login", login), ("password", password), ("next", "/")],
        )
        .await
    }
}

/// Percent-encodes a form value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The value of the first hidden input called `name` in a page.
pub(crate) fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// The `data-menu` codes of the navigation in a page.
pub(crate) fn menu_codes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("data-menu=\"") {
        rest = &rest[i + 11..];
        if let Some(end) = rest.find('"') {
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out.sort();
    out.dedup();
    out
}
