//! Posting reports to the hub: a minimal HTTP/1.1 client over plain TCP or rustls.
//!
//! Hand-written rather than an HTTP client crate because the agent needs one request shape and a
//! certificate pin, which the small sync clients do not expose; this keeps the dependency set to
//! rustls alone. The connection is kept alive between reports (one TLS handshake per hub
//! restart or idle close, not per report) and checked before reuse; a request that fails on a
//! reused connection is retried once on a fresh one, which is safe because report ids make a
//! replay idempotent.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown as NetShutdown, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};

use crate::report::HubAnswer;

/// Where reports go, relative to the hub's base URL.
pub const REPORT_PATH: &str = "/api/v1/agent/report";

/// The hub's base URL, split once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUrl {
    pub tls: bool,
    /// As written (IPv6 literals keep their brackets): for the `Host` header.
    pub host_header: String,
    /// For connecting and for the TLS server name (no brackets).
    pub host: String,
    pub port: u16,
    /// Base path without trailing slash ("" or "/vigie").
    pub prefix: String,
}

impl HubUrl {
    pub fn parse(s: &str) -> Result<HubUrl, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{s:?}: must start with https:// or http://"));
        };
        if rest.contains(['?', '#']) {
            return Err(format!(
                "{s:?}: no query or fragment, just scheme://host[:port][/path]"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "{s:?}: no user info in the URL; the token goes in `token`"
            ));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port_text) = if let Some(r) = authority.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| format!("{s:?}: unclosed '['"))?;
            let after = &r[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{s:?}: bad address")),
            };
            (&r[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        if host.contains(':') && !authority.starts_with('[') {
            return Err(format!("{s:?}: put an IPv6 address in brackets"));
        }
        let port = match port_text {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{s:?}: bad port {p:?}"))?,
            None => default_port,
        };
        let host_header = if port == default_port {
            authority.trim_end_matches(&format!(":{port}")).to_owned()
        } else {
            authority.to_owned()
        };
        Ok(HubUrl {
            tls,
            host_header,
            host: host.to_owned(),
            port,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// Scheme, authority and prefix, for messages.
    pub fn base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let port = if self.port == if self.tls { 443 } else { 80 } {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}{port}{}", self.prefix)
    }

    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// What became of one POST.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: the hub has the report.
    Accepted { fast: Option<bool> },
    /// A 4xx other than 408/429: sending it again would get the same answer.
    Refused { status: u16, message: String },
    /// Network error, timeout, 408, 429, 3xx or 5xx: try again later.
    Failed(String),
}

/// How the hub's certificate is checked.
pub enum Trust {
    /// The system's CA store.
    System,
    /// Only the CAs of this PEM file.
    CaFile(std::path::PathBuf),
    /// Only the certificate with this SHA-256 (name and dates are not checked: a pinned
    /// certificate is usually self-signed for an address).
    Pin([u8; 32]),
}

/// Reads a PEM file of CA certificates; an error message when it holds none.
pub fn load_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{}: no usable certificate", path.display()));
    }
    Ok(roots)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the TLS settings once; a failure here is a configuration problem.
pub fn tls_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match trust {
        Trust::Pin(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCert {
                fingerprint: *fingerprint,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Trust::CaFile(path) => builder
            .with_root_certificates(load_ca_file(path)?)
            .with_no_client_auth(),
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                crate::warn!("system CA store: {e}");
            }
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no CA certificate found in the system store: set `ca_file` or `pin_sha256`"
                        .into(),
                );
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Accepts exactly one certificate, still checking that the server holds its private key.
#[derive(Debug)]
struct PinnedCert {
    fingerprint: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if sha256(end_entity.as_ref()) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "hub certificate SHA-256 {} does not match pin_sha256",
                hex(&sha256(end_entity.as_ref()))
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Largest answer body read; the hub's answers are a few bytes.
const MAX_BODY: usize = 1 << 20;
const MAX_LINE: u64 = 16 * 1024;

pub struct Client {
    url: HubUrl,
    authorization: String,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    timeout: Duration,
    conn: Option<BufReader<Stream>>,
}

impl Client {
    pub fn new(
        url: HubUrl,
        token: &str,
        trust: &Trust,
        timeout: Duration,
    ) -> Result<Client, String> {
        let tls = if url.tls {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|e| format!("hub host {:?}: {e}", url.host))?;
            Some((tls_config(trust)?, name))
        } else {
            None
        };
        Ok(Client {
            url,
            authorization: format!("Bearer {token}"),
            tls,
            timeout,
            conn: None,
        })
    }

    /// Posts one report (already JSON).
    pub fn post_report(&mut self, body: &[u8]) -> Outcome {
        if self
            .conn
            .as_ref()
            .is_some_and(|c| !still_open(c.get_ref().tcp()))
        {
            self.conn = None;
        }
        let reused = self.conn.is_some();
        match self.exchange(body) {
            Ok(o) => o,
            Err(e) if reused => {
                crate::debug!("kept-alive connection failed ({e}); retrying on a new one");
                self.conn = None;
                self.exchange(body)
                    .unwrap_or_else(|e| Outcome::Failed(e.to_string()))
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// Closes the connection (at exit, so the hub sees a clean close).
    pub fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            if let Stream::Tls(s) = c.get_mut() {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            let _ = c.get_ref().tcp().shutdown(NetShutdown::Both);
        }
    }

    fn exchange(&mut self, body: &[u8]) -> io::Result<Outcome> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => BufReader::new(self.connect()?),
        };
        let head = format!(
            "POST {}{REPORT_PATH} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vigie-agent/{}\r\n\
             Authorization: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.url.prefix,
            self.url.host_header,
            env!("CARGO_PKG_VERSION"),
            self.authorization,
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        conn.get_mut().write_all(&request)?;
        conn.get_mut().flush()?;
        let response = read_response(&mut conn)?;
        if response.keep_alive {
            self.conn = Some(conn);
        }
        Ok(classify(response.status, &response.body))
    }

    fn connect(&self) -> io::Result<Stream> {
        let addrs = (self.url.host.as_str(), self.url.port).to_socket_addrs()?;
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no address", self.url.host),
        );
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(self.timeout))?;
                    tcp.set_write_timeout(Some(self.timeout))?;
                    tcp.set_nodelay(true)?;
                    return match &self.tls {
                        None => Ok(Stream::Plain(tcp)),
                        Some((config, name)) => {
                            let conn = ClientConnection::new(config.clone(), name.clone())
                                .map_err(io::Error::other)?;
                            let mut tls = StreamOwned::new(conn, tcp);
                            // Handshake now, so certificate errors are reported as such.
                            while tls.conn.is_handshaking() {
                                tls.conn.complete_io(&mut tls.sock)?;
                            }
                            Ok(Stream::Tls(Box::new(tls)))
                        }
                    };
                }
                Err(e) => last = io::Error::new(e.kind(), format!("{addr}: {e}")),
            }
        }
        Err(last)
    }
}

/// A kept-alive connection the hub has closed (or sent something unasked on) is not reused.
fn still_open(tcp: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    if tcp.set_nonblocking(true).is_err() {
        return false;
    }
    let open = matches!(tcp.peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    tcp.set_nonblocking(false).is_ok() && open
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    r.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-answer",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "answer head is not UTF-8"))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one HTTP/1.x response (status line, headers, body by length, chunks or close).
pub fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    let status_line = read_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| invalid("not an HTTP/1.x answer"))?;
    let mut keep_alive = version == "HTTP/1.1";
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for _ in 0..100 {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| invalid("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    let mut body = Vec::new();
    if status == 204 || status == 304 || (100..200).contains(&status) {
        // No body by definition.
    } else if chunked {
        loop {
            let size_line = read_line(r)?;
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(r)?.is_empty() {}
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("answer too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            read_line(r)?;
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(invalid("answer too large"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.take(MAX_BODY as u64).read_to_end(&mut body)?;
        keep_alive = false;
    }
    Ok(Response {
        status,
        body,
        keep_alive,
    })
}

/// Maps a status to what the agent does with the report.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    match status {
        200..=299 => {
            let fast = serde_json::from_slice::<HubAnswer>(body)
                .ok()
                .and_then(|a| a.fast);
            Outcome::Accepted { fast }
        }
        408 | 429 => Outcome::Failed(format!("hub answered {status}: {}", snippet(body))),
        400..=499 => Outcome::Refused {
            status,
            message: snippet(body),
        },
        300..=399 => Outcome::Failed(format!(
            "hub answered {status} (redirects are not followed: check the hub URL)"
        )),
        _ => Outcome::Failed(format!("hub answered {status}: {}", snippet(body))),
    }
}

/// The start of an answer body, on one line, for the log.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HubUrl::parse("https://vigie.example.org").unwrap();
        assert!(u.tls);
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("vigie.example.org", 443, "")
        );
        let u = HubUrl::parse("http://127.0.0.1:8080/vigie/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("127.0.0.1", 8080, "/vigie")
        );
        assert_eq!(u.host_header, "127.0.0.1:8080");
        assert_eq!(u.base(), "http://127.0.0.1:8080/vigie");
        assert!(u.is_loopback());
        let u = HubUrl::parse("https://[::1]:8443").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8443));
        assert_eq!(u.host_header, "[::1]:8443");
        let u = HubUrl::parse("https://hub:443").unwrap();
        assert_eq!(u.host_header, "hub");
        assert!(HubUrl::parse("ftp://x").is_err());
        assert!(HubUrl::parse("https://x:99999").is_err());
        assert!(HubUrl::parse("https://user:pw@x").is_err());
        assert!(HubUrl::parse("https:///path").is_err());
    }

    #[test]
    fn response_with_length_keeps_alive() {
        let raw = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\ncontent-length: 13\r\n\r\n{\"fast\":true}";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(r.status, 202);
        assert!(r.keep_alive);
        assert_eq!(
            classify(r.status, &r.body),
            Outcome::Accepted { fast: Some(true) }
        );
    }

    #[test]
    fn chunked_response() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"fas\r\n9;x=y\r\nt\":false}\r\n0\r\n\r\n";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(r.body, b"{\"fast\":false}");
        assert_eq!(
            classify(r.status, &r.body),
            Outcome::Accepted { fast: Some(false) }
        );
    }

    #[test]
    fn close_delimited_and_connection_close() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\ndown";
        let r = read_response(&mut &raw[..]).unwrap();
        assert!(!r.keep_alive);
        assert_eq!(r.body, b"down");
        assert!(matches!(classify(r.status, &r.body), Outcome::Failed(m) if m.contains("503")));
    }

    #[test]
    fn truncated_answer_is_an_error() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}";
        assert!(read_response(&mut &raw[..]).is_err());
        assert!(read_response(&mut &b"SSH-2.0-OpenSSH\r\n"[..]).is_err());
    }

    #[test]
    fn status_classes() {
        assert!(
            matches!(classify(401, b"{\"error\":\"bad token\"}"), Outcome::Refused { status: 401, message } if message.contains("bad token"))
        );
        assert!(matches!(
            classify(413, b""),
            Outcome::Refused { status: 413, .. }
        ));
        assert!(matches!(classify(408, b""), Outcome::Failed(_)));
        assert!(matches!(classify(429, b""), Outcome::Failed(_)));
        assert!(matches!(classify(301, b""), Outcome::Failed(_)));
        assert!(matches!(classify(500, b""), Outcome::Failed(_)));
        assert_eq!(classify(200, b"not json"), Outcome::Accepted { fast: None });
    }

    #[test]
    fn sha256_known_value() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
