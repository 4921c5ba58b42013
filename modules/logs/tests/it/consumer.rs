//! The consumer end to end: live listeners, the real pipeline, the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket};
use vigie_alerts::rules::RuleSet;
use vigie_core::domain::Domains;
use vigie_core::store::{Backend, Store};
use vigie_logs::filter::LogFilter;
use vigie_logs::{LogsHandle, LogsSettings, repo};
use vigie_syslog::SyslogConfig;

use crate::{Hub, alerts, eventually, hub, hub_with};

fn settings() -> LogsSettings {
    LogsSettings {
        syslog: SyslogConfig {
            udp: "127.0.0.1:0".into(),
            tcp: "127.0.0.1:0".into(),
            ..SyslogConfig::default()
        },
        batch_wait: Duration::from_millis(20),
        ..LogsSettings::default()
    }
}

async fn start(h: &Hub, settings: &LogsSettings) -> LogsHandle {
    vigie_logs::start(h.store.clone(), Arc::new(h.pipeline.clone()), settings)
        .await
        .expect("the receiver starts")
}

async fn udp(to: SocketAddr, lines: &[&str]) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for line in lines {
        socket.send_to(line.as_bytes(), to).await.unwrap();
    }
}

async fn stored(store: &Store) -> i64 {
    repo::count(store).await.unwrap()
}

async fn wait_stored(store: &Store, n: i64) {
    eventually(&format!("{n} messages stored"), || async {
        stored(store).await >= n
    })
    .await;
    assert_eq!(stored(store).await, n);
}

#[tokio::test]
async fn udp_and_tcp_messages_are_stored_and_qualified() {
    let h = hub().await;
    let logs = start(&h, &settings()).await;
    udp(
        logs.udp_addr().unwrap(),
        &[
            "<11>Oct 11 22:14:15 rtr-udp ifmgr: port 3 error rate high",
            "<14>Oct 11 22:14:15 rtr-udp ifmgr: port 3 up",
        ],
    )
    .await;
    let mut tcp = TcpStream::connect(logs.tcp_addr().unwrap()).await.unwrap();
    // Newline framing, then octet counting on the same connection.
    tcp.write_all(b"<9>Oct 11 22:14:16 core1 bgp: neighbour 10.0.0.1 down\n<30>Oct 11 22:14:16 core1 ntpd: synchronised\n")
        .await
        .unwrap();
    let framed = "<1>1 2026-11-21T08:30:00Z fw1 pf - - [origin ip=\"10.1.2.3\"] state table full";
    tcp.write_all(format!("{} {framed}", framed.len()).as_bytes())
        .await
        .unwrap();
    tcp.flush().await.unwrap();
    wait_stored(&h.store, 5).await;
    drop(tcp);
    logs.shutdown().await;

    let messages = repo::list(
        &h.store,
        &LogFilter {
            limit: 10,
            ..LogFilter::default()
        },
    )
    .await
    .unwrap();
    let transports: Vec<&str> = messages.iter().map(|m| m.transport.as_str()).collect();
    assert_eq!(transports.iter().filter(|t| **t == "udp").count(), 2);
    assert_eq!(transports.iter().filter(|t| **t == "tcp").count(), 3);
    let fw = messages.iter().find(|m| m.host == "fw1").unwrap();
    assert_eq!(
        fw.structured_data,
        Some(json!({"origin": {"ip": "10.1.2.3"}}))
    );

    // Severities 0–4 became alerts with the reference mapping; 5–7 did not.
    let mut alerts = alerts(&h.store).await;
    alerts.sort_by(|a, b| a.resource.cmp(&b.resource));
    let seen: Vec<(&str, i32, &str)> = alerts
        .iter()
        .map(|a| (a.resource.as_str(), a.severity, a.message.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("core1", 2, "core1 neighbour 10.0.0.1 down"),
            ("fw1", 2, "fw1 state table full"),
            ("rtr-udp", 0, "rtr-udp port 3 error rate high"),
        ]
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.domain == "network" && a.source == "syslog")
    );
    assert_eq!(alerts[1].attributes.0["sd.origin.ip"], json!("10.1.2.3"));
}

#[tokio::test]
async fn a_flood_of_one_message_is_one_alert_with_a_count() {
    let h = hub().await;
    let logs = start(&h, &settings()).await;
    let mut tcp = TcpStream::connect(logs.tcp_addr().unwrap()).await.unwrap();
    let mut burst = String::new();
    for _ in 0..600 {
        burst.push_str(
            "<187>Oct 11 22:14:15 sw-access-3 LINK: Interface Gi0/1 changed state to down\n",
        );
    }
    for n in 0..400 {
        burst.push_str(&format!(
            "<190>Oct 11 22:14:15 sw-access-3 LINK: poll {n} ok\n"
        ));
    }
    tcp.write_all(burst.as_bytes()).await.unwrap();
    tcp.shutdown().await.unwrap();
    wait_stored(&h.store, 1000).await;
    logs.shutdown().await;

    let alerts = alerts(&h.store).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(
        a.count, 599,
        "the first opened it, the 599 others were counted"
    );
    assert_eq!((a.severity, a.source_severity), (0, Some(3)));
    assert_eq!(
        a.message,
        "sw-access-3 Interface Gi0/1 changed state to down"
    );
    // The informational ones are kept as messages all the same.
    let info = repo::list(
        &h.store,
        &LogFilter {
            host: Some("sw-access-3".into()),
            facility: Some(23),
            limit: 1000,
            ..LogFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(info.len(), 1000);
    assert_eq!(info.iter().filter(|m| m.severity == Some(6)).count(), 400);
}

#[tokio::test]
async fn rules_match_facility_application_and_structured_data() {
    let rules = RuleSet::from_toml_str(
        r#"
[[rules]]
name = "ssh-failures"
when = { source = "syslog", facility = "authpriv", attributes = { app_name = "sshd" } }
set = { severity = 2, domain = "systems", message = "SSH on {resource}: {message}" }

[[rules]]
name = "datacentre-1"
tags = ["dc1"]
when = { attributes = { "sd.origin.ip" = "10.1.*", msg_id = "ID47" } }
set = { severity = 1, domain = "network" }

[[rules]]
name = "the-rest"
drop = true
"#,
        &Domains::default(),
    )
    .expect("rules");
    let h = hub_with(rules).await;
    let logs = start(&h, &settings()).await;
    udp(
        logs.udp_addr().unwrap(),
        &[
            // authpriv.info from sshd: significant for this site even at severity 6.
            "<86>Oct 11 22:14:15 bastion sshd[42]: Failed password for root from 203.0.113.9",
            // user.info from sshd: not authpriv, dropped.
            "<14>Oct 11 22:14:15 bastion sshd[43]: Accepted publickey for alice",
            r#"<165>1 2026-11-21T08:30:00Z lb1 haproxy - ID47 [origin ip="10.1.9.9"] backend pool degraded"#,
            r#"<165>1 2026-11-21T08:30:00Z lb2 haproxy - ID47 [origin ip="192.168.1.1"] backend pool degraded"#,
        ],
    )
    .await;
    wait_stored(&h.store, 4).await;
    logs.shutdown().await;

    let mut alerts = alerts(&h.store).await;
    alerts.sort_by(|a, b| a.resource.cmp(&b.resource));
    let seen: Vec<(&str, i32, &str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a.resource.as_str(),
                a.severity,
                a.domain.as_str(),
                a.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "bastion",
                2,
                "systems",
                "SSH on bastion: Failed password for root from 203.0.113.9"
            ),
            ("lb1", 1, "network", "backend pool degraded"),
        ]
    );
    assert_eq!(alerts[1].tags.0, json!(["dc1"]));
}

#[tokio::test]
async fn a_stop_keeps_everything_tcp_accepted() {
    let h = hub().await;
    let logs = start(&h, &settings()).await;
    let addr = logs.tcp_addr().unwrap();
    let mut senders = Vec::new();
    for s in 0..4 {
        senders.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let mut text = String::new();
            for n in 0..2500 {
                text.push_str(&format!("<14>Oct 11 22:14:15 host{s} app: message {n}\n"));
            }
            tcp.write_all(text.as_bytes()).await.unwrap();
            tcp.flush().await.unwrap();
            tcp
        }));
    }
    let mut open = Vec::new();
    for s in senders {
        open.push(s.await.unwrap());
    }
    // Everything is written to the sockets (the kernel took it); stop at once.
    logs.shutdown().await;
    assert_eq!(stored(&h.store).await, 10_000);
    drop(open);
}

#[tokio::test]
async fn a_blocked_store_slows_tcp_down_and_loses_nothing() {
    let h = hub().await;
    let mut s = settings();
    s.syslog.queue_capacity = 64;
    s.batch_size = 32;
    let logs = start(&h, &s).await;
    let stats = logs.stats();
    // Another connection holds the table's write lock for a while.
    let blocker = {
        let store = h.store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            // SQLite: any write takes the database's write lock; PostgreSQL: a lock that
            // conflicts with inserts.
            let sql = match store.backend() {
                Backend::Sqlite => "DELETE FROM syslog_blocks",
                Backend::Postgres => "LOCK TABLE syslog_blocks IN SHARE ROW EXCLUSIVE MODE",
            };
            vigie_core::on_tx!(&mut tx, conn => sqlx::query(sql).execute(&mut *conn).await.map(drop))
                .unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(tx);
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut tcp = TcpStream::connect(logs.tcp_addr().unwrap()).await.unwrap();
    let mut text = String::new();
    for n in 0..3000 {
        text.push_str(&format!(
            "<14>Oct 11 22:14:15 slow app: message {n:05} {}\n",
            "p".repeat(200)
        ));
    }
    tcp.write_all(text.as_bytes()).await.unwrap();
    tcp.shutdown().await.unwrap();
    blocker.await.unwrap();
    wait_stored(&h.store, 3000).await;
    logs.shutdown().await;
    assert_eq!(stats.lost(), 0);
    assert_eq!(stored(&h.store).await, 3000);
}

#[tokio::test]
async fn a_flood_the_rules_drop_is_screened_and_its_log_stays_short() {
    let h = hub().await;
    let settings = LogsSettings {
        batch_size: 500,
        ..settings()
    };
    let logs = start(&h, &settings).await;
    let mut tcp = TcpStream::connect(logs.tcp_addr().unwrap()).await.unwrap();
    let mut text = String::new();
    for n in 0..20_000 {
        // Informational: the shipped rules drop them all.
        text.push_str(&format!(
            "<14>Oct 11 22:14:15 host{} app: permitted udp 10.2.0.{} seq={n}\n",
            n % 7,
            n % 250
        ));
    }
    tcp.write_all(text.as_bytes()).await.unwrap();
    tcp.flush().await.unwrap();
    wait_stored(&h.store, 20_000).await;
    drop(tcp);
    let stats = logs.stats();
    logs.shutdown().await;
    // Every message went through the rules (screened, since the first rule it meets drops it),
    // and none became an alert.
    assert_eq!(stats.submitted(), 20_000);
    assert!(alerts(&h.store).await.is_empty());
    if let Some(file) = h.store.sqlite_file() {
        // 20 000 rows are about 8 MB of log frames; checkpointed by the storer between its
        // batches of 500, the log restarts from its beginning and stays about one batch long.
        let mut wal = file.into_os_string();
        wal.push("-wal");
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert!(size < 2_000_000, "the log grew to {size} bytes");
    }
}
