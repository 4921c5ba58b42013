//! The notification benchmark (`scripts/bench-notify`): starts aiosmtpd (the real SMTP server of
//! the tests), a store (SQLite in a temporary folder, or `VIGIE_BENCH_DATABASE_URL`) and the
//! delivery worker; enqueues N mails (default 1000) as a burst, each in its own transaction as
//! the routing engine does, and prints the latency from each commit to the SMTP server's
//! acceptance (p50, p99, max), measured by Message-ID.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigie_core::store::{Store, StoreOptions};
use vigie_notify::settings::NotifySettings;
use vigie_notify::{Channel, Message};

/// The SMTP server, stopped even when the benchmark panics.
struct Sink(std::process::Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let python = std::env::var("VIGIE_TEST_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/test-venv/bin/python"
        )
        .to_owned()
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut sink = Sink(
        Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py"))
            .arg(port.to_string())
            .arg("--fast")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd (run scripts/bench-notify, which prepares the venv)"),
    );
    let received: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let received = received.clone();
        let stdout = sink.0.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if v.get("ready").is_some() {
                    let _ = ready_tx.send(());
                } else {
                    received.lock().unwrap().insert(
                        v["message_id"].as_str().unwrap().to_owned(),
                        v["received"].as_f64().unwrap(),
                    );
                }
            }
        });
    }
    ready_rx.recv_timeout(Duration::from_secs(20)).unwrap();

    let dir = std::env::temp_dir().join(format!("vigie_bench_notify_{}", std::process::id()));
    let url = std::env::var("VIGIE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.display()));
    let store = Store::connect(&StoreOptions::new(url.clone()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut settings = NotifySettings::default().with_smtp(
        format!("smtp://127.0.0.1:{port}"),
        "Vigie <vigie@bench.example>",
    );
    if let Some(c) = std::env::var("BENCH_SMTP_CONNECTIONS")
        .ok()
        .and_then(|c| c.parse().ok())
    {
        settings.worker.smtp_connections = c;
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let worker = vigie_notify::spawn_worker(store.clone(), settings, stop);
    // Warm up: one mail, so that connection set-up is not in the figures... except the pool's.
    let _ = enqueue(&store, 0).await;
    while received.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let base = received.lock().unwrap().len();

    let started = Instant::now();
    let mut committed: HashMap<i64, f64> = HashMap::with_capacity(n);
    let one_tx = std::env::var("BENCH_ONE_TRANSACTION").is_ok_and(|v| v == "1");
    if one_tx {
        // The harshest burst: all of them committed at the same instant.
        let mut tx = store.begin().await.unwrap();
        let mut ids = Vec::with_capacity(n);
        for i in 1..=n {
            ids.push(
                vigie_notify::enqueue_message(&mut tx, &mail(i))
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();
        vigie_notify::wake();
        let at = now_secs();
        committed.extend(ids.into_iter().map(|id| (id, at)));
    } else {
        for i in 1..=n {
            let id = enqueue(&store, i).await;
            committed.insert(id, now_secs());
        }
    }
    let enqueue_time = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.lock().unwrap().len() < base + n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    let got = received.lock().unwrap().clone();
    let mut latencies: Vec<f64> = got
        .iter()
        .filter_map(|(mid, at)| {
            let id: i64 = mid
                .trim_start_matches("<outbox-")
                .split('.')
                .next()?
                .parse()
                .ok()?;
            committed.get(&id).map(|c| (at - c) * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "backend {}: {} mails enqueued in {:.0} ms ({}), all accepted by aiosmtpd after {:.0} ms",
        store.backend().name(),
        n,
        enqueue_time.as_secs_f64() * 1000.0,
        if one_tx {
            "one transaction"
        } else {
            "one transaction each"
        },
        total.as_secs_f64() * 1000.0
    );
    if latencies.len() < n {
        println!("MISSING: only {} of {n} mails arrived", latencies.len());
        std::process::exit(1);
    }
    println!(
        "commit -> SMTP accepted: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
}

fn mail(i: usize) -> Message {
    Message {
        channel: Channel::Mail,
        recipient: "astreinte@bench.example".into(),
        subject: format!("[Vigie] CRITICAL réseau: sw-{i} — lien coupé"),
        text: format!("Alerte {i}: lien coupé sur sw-{i}."),
        html: Some(format!("<p>Alerte <b>{i}</b> : lien coupé sur sw-{i}.</p>")),
        kind: "alert.routed".into(),
        user_id: None,
        dedupe_key: Some(format!("bench:{}:{i}", std::process::id())),
    }
}

async fn enqueue(store: &Store, i: usize) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let id = vigie_notify::enqueue_message(&mut tx, &mail(i))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    vigie_notify::wake();
    id
}
