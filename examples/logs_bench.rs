//! Benchmark of the syslog messages' store (issue: the syslog receiver): stores N messages (the
//! stream of `scripts/bench-syslog`: RFC 3164 and RFC 5424 lines from 50 hosts, one host seen
//! once) through the storer's own functions, then times the log viewer's lists on them.
//!
//! Printed: messages stored per second by the store alone (encoding included, one batch of 8000
//! per transaction, as the storer writes them during a flood), the store's size, and per list
//! its median and worst time over repeated runs.
//!
//! `scripts/bench-logs [-n N] [--backend sqlite|postgres]`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use vigie_core::store::{Store, StoreOptions};
use vigie_logs::MessagesStore;
use vigie_logs::filter::LogFilter;
use vigie_logs::repo;
use vigie_logs::syslog::parse::{Origin, ParseOptions, Transport, parse};

/// The hub's default `batch_size`: a flood fills every batch (stored as blocks of 1024).
const BATCH: usize = 8000;
const RUNS: usize = 15;

fn line(n: usize) -> String {
    let host = if n == 700_001 {
        "lone".to_owned()
    } else {
        format!("rtr-{:02}", n % 50)
    };
    let (sev, text) = match n % 1000 {
        0 => (1, format!("%SYS-1-CRIT: power supply {} failed", n % 2)),
        1..=10 => (
            3,
            format!(
                "%LINK-3-UPDOWN: Interface Gi0/{} changed state to down",
                n % 48
            ),
        ),
        11..=110 => (
            4,
            format!(
                "%SEC-4-ACL: list 101 denied tcp 10.0.{}.{}(4{}) -> 10.1.1.1(443), 1 packet",
                n % 250,
                n % 200,
                n % 1000
            ),
        ),
        _ => (
            6,
            format!(
                "%SEC-6-IPACCESSLOGP: list 110 permitted udp 10.2.{}.{}(5{}) -> 10.3.3.3(53), 1 packet seq={n}",
                n % 250,
                n % 200,
                n % 1000
            ),
        ),
    };
    let pri = 23 * 8 + sev;
    if n % 2 == 1 {
        format!("<{pri}>Nov 21 08:30:{:02} {host} ios: {text}", n % 60)
    } else {
        format!(
            "<{pri}>1 2026-11-21T08:30:{:02}.{:03}Z {host} ios {} LOG [meta seq=\"{n}\"] {text}",
            n % 60,
            n % 1000,
            n % 9000
        )
    }
}

async fn open(backend: &str, dir: &std::path::Path, pg_url: &str) -> Result<Store> {
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.join("vigie.db").display()),
        _ => pg_url.to_owned(),
    };
    let hub = Store::connect(&StoreOptions::new(url)).await?;
    hub.migrate().await?;
    Ok(MessagesStore::open(&hub).await?.store().clone())
}

fn median_and_max(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(times[times.len() / 2]), ms(times[times.len() - 1]))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut count = 1_000_000_usize;
    let mut backend = "sqlite".to_owned();
    let mut pg_url = std::env::var("VIGIE_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-n" => count = it.next().context("-n N")?.parse()?,
            "--backend" => backend = it.next().context("--backend sqlite|postgres")?,
            "--pg-url" => pg_url = it.next().context("--pg-url URL")?,
            other => bail!("unknown argument {other}"),
        }
    }
    if backend != "sqlite" && backend != "postgres" {
        bail!("--backend sqlite|postgres, not {backend}");
    }
    let dir = std::env::temp_dir().join(format!("vigie-logs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = open(&backend, &dir, &pg_url).await?;
    if repo::count(&store).await? > 0 {
        bail!("the store already holds syslog messages: give an empty database");
    }

    // The reception times: 1 000 messages a millisecond apart, from one hour ago.
    let start: DateTime<Utc> = Utc::now() - chrono::Duration::hours(1);
    let at = |n: usize| start + chrono::Duration::microseconds(n as i64);
    let options = ParseOptions::default();
    let sender = "192.0.2.7:40000".parse()?;
    let mut stored = Duration::ZERO;
    let mut n = 0;
    while n < count {
        let batch: Vec<_> = (n..(n + BATCH).min(count))
            .map(|i| {
                let origin = Origin {
                    sender,
                    transport: Transport::Tcp,
                    received_at: at(i),
                };
                parse(line(i).as_bytes(), false, origin, &options)
            })
            .collect();
        let began = Instant::now();
        repo::insert_batch(&store, &batch).await?;
        stored += began.elapsed();
        n += batch.len();
    }
    println!(
        "backend {backend}: {count} messages stored in {:.1} s by the store alone: {:.0} messages/s",
        stored.as_secs_f64(),
        count as f64 / stored.as_secs_f64()
    );
    if let Some(file) = store.sqlite_file() {
        store.checkpoint().await?;
        let size = std::fs::metadata(&file)?.len();
        println!(
            "file {:.0} MB, {:.0} bytes a message",
            size as f64 / 1e6,
            size as f64 / count as f64
        );
    }

    let page = |f: LogFilter| LogFilter {
        limit: if f.limit == 0 { 100 } else { f.limit },
        ..f
    };
    let middle = at(count / 2);
    let cases = [
        ("newest 100", page(LogFilter::default())),
        (
            "a common host's page",
            page(LogFilter {
                host: Some("rtr-07".into()),
                ..LogFilter::default()
            }),
        ),
        (
            "a host seen once",
            page(LogFilter {
                host: Some("lone".into()),
                ..LogFilter::default()
            }),
        ),
        (
            "an unknown host",
            page(LogFilter {
                host: Some("nobody".into()),
                ..LogFilter::default()
            }),
        ),
        (
            "errors and worse",
            page(LogFilter {
                severity: Some(3),
                ..LogFilter::default()
            }),
        ),
        (
            "one second in the middle",
            page(LogFilter {
                from: Some(middle),
                to: Some(middle + chrono::Duration::seconds(1)),
                ..LogFilter::default()
            }),
        ),
        (
            "text on every 1000th",
            page(LogFilter {
                text: Some("power supply".into()),
                ..LogFilter::default()
            }),
        ),
        (
            "text found nowhere",
            page(LogFilter {
                text: Some("no such words".into()),
                ..LogFilter::default()
            }),
        ),
        (
            "export page of 1000, host",
            page(LogFilter {
                host: Some("rtr-07".into()),
                limit: 1000,
                ..LogFilter::default()
            }),
        ),
    ];
    println!(
        "{:<28} {:>8} {:>10} {:>10}",
        "list", "found", "median ms", "max ms"
    );
    for (name, filter) in &cases {
        let mut times = Vec::with_capacity(RUNS);
        let mut found = 0;
        for _ in 0..RUNS {
            let began = Instant::now();
            found = repo::list(&store, filter).await?.len();
            times.push(began.elapsed());
        }
        let (median, max) = median_and_max(times);
        println!("{name:<28} {found:>8} {median:>10.1} {max:>10.1}");
    }
    if backend == "postgres" {
        // The database is shared: leave it as found.
        repo::delete_ids_below(&store, i64::MAX).await?;
    }
    store.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
