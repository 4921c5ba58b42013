//! The receiver, live on 127.0.0.1: UDP, TCP (both framings, many senders), TLS, back-pressure
//! and shutdown. One test binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz;
mod pressure;
mod rate;
mod tcp;
mod tls;
mod udp;

use std::time::Duration;

use vigie_syslog::{SyslogConfig, SyslogMessage, SyslogReceiver, SyslogServer};

/// Listeners on ephemeral loopback ports.
pub fn config() -> SyslogConfig {
    SyslogConfig {
        udp: "127.0.0.1:0".into(),
        tcp: "127.0.0.1:0".into(),
        ..SyslogConfig::default()
    }
}

pub async fn start(config: &SyslogConfig) -> (SyslogServer, SyslogReceiver) {
    SyslogServer::start(config)
        .await
        .expect("the receiver starts")
}

/// Exactly `n` messages, failing after 20 s.
pub async fn take(rx: &mut SyslogReceiver, n: usize) -> Vec<SyslogMessage> {
    let mut out = Vec::with_capacity(n);
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while out.len() < n {
            match rx.recv().await {
                Some(m) => out.push(m),
                None => break,
            }
        }
    })
    .await;
    assert!(
        waited.is_ok() && out.len() == n,
        "expected {n} messages, got {}",
        out.len()
    );
    out
}

/// Nothing more arrives within `wait`.
pub async fn assert_quiet(rx: &mut SyslogReceiver, wait: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected message: {m:?}");
    }
}

/// Polls `f` until it holds, failing after 10 s.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}
