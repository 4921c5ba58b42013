//! TLS (RFC 5425), with certificates made for the test: a CA, a server certificate and a client
//! certificate it signed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vigie_syslog::{ConnectionError, SyslogConfig, TlsConfig, Transport};

use crate::{assert_quiet, config, eventually, start, take};

struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: Vec<u8>,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA, and the server's and a client's certificates signed by it, in a fresh directory.
fn pki(name: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("vigie-syslog-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Vigie test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["router.example".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();

    std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    Pki {
        dir,
        ca: ca.der().clone(),
        client_chain: vec![client_cert.der().clone()],
        client_key: client_key.serialize_der(),
    }
}

fn tls_config(pki: &Pki, client_ca: bool) -> SyslogConfig {
    SyslogConfig {
        udp: String::new(),
        tls: Some(TlsConfig {
            listen: "127.0.0.1:0".into(),
            cert_file: pki.dir.join("server.pem"),
            key_file: pki.dir.join("server.key"),
            client_ca_file: client_ca.then(|| pki.dir.join("ca.pem")),
        }),
        ..config()
    }
}

fn connector(pki: &Pki, with_client_cert: bool) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_client_cert {
        builder
            .with_client_auth_cert(
                pki.client_chain.clone(),
                PrivateKeyDer::Pkcs8(pki.client_key.clone().into()),
            )
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn client_certificate_required_accepts_a_signed_client_and_refuses_others() {
    let pki = pki("required");
    let (server, mut rx) = start(&tls_config(&pki, true)).await;
    let to = server.tls_addr().unwrap();
    let name = ServerName::try_from("localhost").unwrap();

    // A client with a certificate signed by the CA: octet-counted frames, as RFC 5425 says.
    let tcp = TcpStream::connect(to).await.unwrap();
    let mut tls = connector(&pki, true)
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    let mut out = Vec::new();
    for n in 0..20 {
        let msg = format!("<165>1 2024-05-01T10:00:00Z router1 app - - - tls {n}");
        out.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
    }
    tls.write_all(&out).await.unwrap();
    tls.flush().await.unwrap();
    let got = take(&mut rx, 20).await;
    assert!(
        got.iter()
            .all(|m| m.transport == Transport::Tls && m.host == "router1")
    );
    assert_eq!(got[19].message, "tls 19");
    tls.shutdown().await.unwrap();

    // A client without a certificate is refused: nothing it sends is received.
    let tcp = TcpStream::connect(to).await.unwrap();
    if let Ok(mut anonymous) = connector(&pki, false).connect(name.clone(), tcp).await {
        // With TLS 1.3 the client may think the handshake is done before the server checked it.
        let _ = anonymous.write_all(b"20 <13>should not arrive").await;
        let _ = anonymous.flush().await;
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), anonymous.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "refused: {read:?}");
    }
    // Plain text on the TLS port is refused too.
    let mut plain = TcpStream::connect(to).await.unwrap();
    plain
        .write_all(b"<13>Oct 11 22:14:15 h app: plain text\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read(&mut buf)).await;
    assert!(read.is_ok(), "the receiver answers or closes at once");

    eventually("both failed handshakes counted", || {
        server
            .stats()
            .connection_errors(Transport::Tls, ConnectionError::TlsHandshake)
            == 2
    })
    .await;
    assert_quiet(&mut rx, Duration::from_millis(100)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_client_ca_any_client_is_accepted() {
    let pki = pki("optional");
    let (server, mut rx) = start(&tls_config(&pki, false)).await;
    let tcp = TcpStream::connect(server.tls_addr().unwrap())
        .await
        .unwrap();
    let mut tls = connector(&pki, false)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"<13>Oct 11 22:14:15 h app: over tls, newline framed\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let got = take(&mut rx, 1).await;
    assert_eq!(got[0].message, "over tls, newline framed");
    server.shutdown().await;
}

#[test]
fn unreadable_or_mismatched_tls_files_are_reported_by_key() {
    let pki = pki("bad");
    let mut c = tls_config(&pki, true);
    if let Some(t) = c.tls.as_mut() {
        // The CA's certificate with the server's key: they do not go together.
        t.cert_file = pki.dir.join("ca.pem");
        t.client_ca_file = Some(pki.dir.join("server.key"));
    }
    let problems = c.validate("syslog").unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["syslog.tls.client_ca_file"], "{problems:?}");

    if let Some(t) = c.tls.as_mut() {
        t.client_ca_file = None;
    }
    let problems = c.validate("syslog").unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "syslog.tls.key_file");
    assert!(
        problems[0].problem.contains("does not go with"),
        "{}",
        problems[0]
    );
}
