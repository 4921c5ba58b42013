//! The built-in syslog receiver in the real hub: messages sent over TCP and UDP are stored (on
//! SQLite in their own file next to the hub's), listed by the API, the significant ones qualified
//! onto the board by the reference mapping; they survive a restart.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::support::{Env, Hub};

/// The receiver's TCP and UDP addresses, from its start-up line.
fn receiver_addresses(hub: &mut Hub) -> (String, String) {
    let output = hub.output();
    let line = output
        .lines()
        .find(|l| l.contains("syslog receiver listening"))
        .unwrap_or_else(|| panic!("no syslog start-up line in:\n{output}"));
    let find = |key: &str| {
        let start = line.find(&format!("{key}=Some(")).expect(key) + key.len() + 6;
        let end = start + line[start..].find(')').expect("closing parenthesis");
        line[start..end].to_owned()
    };
    (find("tcp"), find("udp"))
}

async fn messages(hub: &Hub, token: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = hub.get("/api/v1/syslog?limit=100", Some(token)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let list = answer.json().as_array().cloned().unwrap_or_default();
        if list.len() >= want || Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn messages_sent_over_tcp_and_udp_are_stored_listed_and_qualified() {
    let env = Env::new().await;
    let token = env.token("ops", "operator").await;
    let mut hub = env.serve().await;
    let (tcp, udp) = receiver_addresses(&mut hub);

    let mut stream = tokio::net::TcpStream::connect(&tcp).await.unwrap();
    stream
        .write_all(
            b"<187>Nov 21 08:30:00 rtr-core-1 ios: Interface Gi0/1 down\n\
              <190>1 2026-11-21T08:30:01.000Z rtr-core-1 ios 77 LOG - permitted udp\n",
        )
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(
            b"<185>Nov 21 08:30:02 sw-edge-2 ios: power supply 1 failed",
            &udp,
        )
        .await
        .unwrap();

    let list = messages(&hub, &token, 3).await;
    assert_eq!(list.len(), 3, "{list:?}");
    let by_host = |host: &str, transport: &str| {
        list.iter()
            .filter(|m| m["host"] == host && m["transport"] == transport)
            .count()
    };
    assert_eq!(by_host("rtr-core-1", "tcp"), 2);
    assert_eq!(by_host("sw-edge-2", "udp"), 1);

    // err → low, alert → critical; info is not an alert.
    let deadline = Instant::now() + Duration::from_secs(20);
    let board = loop {
        let answer = hub.get("/api/v1/alerts?source=syslog", Some(&token)).await;
        let board = answer.json().as_array().cloned().unwrap_or_default();
        if board.len() >= 2 || Instant::now() > deadline {
            break board;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut seen: Vec<(String, i64, String)> = board
        .iter()
        .map(|a| {
            (
                a["message"].as_str().unwrap_or_default().to_owned(),
                a["severity"].as_i64().unwrap_or(-1),
                a["domain"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "rtr-core-1 Interface Gi0/1 down".to_owned(),
                0,
                "network".to_owned()
            ),
            (
                "sw-edge-2 power supply 1 failed".to_owned(),
                2,
                "network".to_owned()
            ),
        ]
    );

    if let Some(hub_file) = env.db.url.strip_prefix("sqlite://") {
        let own = std::path::Path::new(hub_file).with_file_name("vigie-syslog.db");
        assert!(own.exists(), "{} missing", own.display());
    }

    // A normal stop keeps them; the next start finds them.
    let (code, _) = hub.stop().await;
    assert_eq!(code, 0);
    let hub = env.serve().await;
    assert_eq!(messages(&hub, &token, 3).await.len(), 3);
    hub.stop().await;
}
