//! HTTPS to a hub with a private CA or a pinned certificate (test certificates in `tls/`).

use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use vigie_agent::transport::{hex, sha256};

use crate::hub::{FakeHub, server_tls, tls_dir};
use crate::{Agent, TOKEN, spooled, wait_until};

const LONG: Duration = Duration::from_secs(15);

fn server_fingerprint() -> String {
    let der = CertificateDer::from_pem_file(tls_dir().join("server.pem")).unwrap();
    hex(&sha256(der.as_ref()))
}

#[test]
fn https_with_a_private_ca() {
    let hub = FakeHub::start(Some(server_tls()));
    // The certificate names "localhost": the name is checked against it.
    let url = format!("https://localhost:{}", hub.addr.port());
    let ca = tls_dir().join("ca.pem");
    let mut agent = Agent::start("ca", &url, &format!("ca_file = \"{}\"", ca.display()));
    assert!(
        wait_until(LONG, || hub.received().len() >= 2),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());
    let got = hub.received();
    assert_eq!(
        got[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(spooled(&agent.spool()), 0);
}

#[test]
fn https_with_a_pinned_certificate() {
    let hub = FakeHub::start(Some(server_tls()));
    // Colon-separated upper case, as `openssl x509 -fingerprint -sha256` prints it.
    let pin = server_fingerprint()
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let mut agent = Agent::start("pin", &hub.url(), &format!("pin_sha256 = \"{pin}\""));
    assert!(
        wait_until(LONG, || hub.received().len() >= 2),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());
}

#[test]
fn a_wrong_pin_is_not_trusted_and_reports_wait_in_the_spool() {
    let hub = FakeHub::start(Some(server_tls()));
    let mut agent = Agent::start(
        "badpin",
        &hub.url(),
        &format!("pin_sha256 = \"{}\"", "ab".repeat(32)),
    );
    let spool = agent.spool();
    assert!(wait_until(LONG, || spooled(&spool) >= 2), "{}", agent.log());
    assert!(agent.stop().success());
    assert!(
        hub.received().is_empty(),
        "nothing reached a hub with another certificate"
    );
    assert!(
        agent.log().contains("does not match pin_sha256"),
        "{}",
        agent.log()
    );
}

#[test]
fn an_unknown_ca_is_not_trusted() {
    let hub = FakeHub::start(Some(server_tls()));
    // Without ca_file the system store is used, which does not know the test CA.
    let url = format!("https://localhost:{}", hub.addr.port());
    let mut agent = Agent::start("noca", &url, "");
    let spool = agent.spool();
    assert!(wait_until(LONG, || spooled(&spool) >= 2), "{}", agent.log());
    assert!(agent.stop().success());
    assert!(hub.received().is_empty());
}
