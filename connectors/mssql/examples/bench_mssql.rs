//! One poll of Orion's `SysLog` with 100 new rows after the watermark, timed (see
//! `scripts/bench-mssql`, which generates the table and starts the TDS server).
//!
//! Besides the poll's wall time it prints what belongs to Vigie and what to the server:
//! - the client's CPU time per poll (the poll runs on this thread: a current-thread runtime; read
//!   from `/proc/thread-self/schedstat`, in nanoseconds);
//! - the rows and the bytes the client received per poll, counted by a TCP relay in this process
//!   (its own threads, outside the CPU figure; TLS records, so a little over the payload);
//! - the server's floor: the bare `SELECT COUNT(*) … WHERE MsgID > @P1`, and the poll's own
//!   statement read with tiberius alone (rows decoded, nothing mapped), on one connection.
//!
//! Environment: `BENCH_URL` (the server), `BENCH_ROWS` (the table's size: the newest `MsgID`),
//! `BENCH_POLLS` (how many polls to time, 20).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::json;
use tokio_util::compat::TokioAsyncWriteCompatExt;
use vigie_mssql::Spec;
use vigie_mssql::orion::Orion;
use vigie_mssql::url::MssqlUrl;
use vigie_poll::Source;

type Error = Box<dyn std::error::Error>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// CPU time of the calling thread so far, in nanoseconds (Linux).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Bytes relayed in each direction.
#[derive(Default)]
struct Counts {
    from_server: AtomicU64,
    to_server: AtomicU64,
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Arc<Counts>, downstream: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                let c = if downstream {
                    &count.from_server
                } else {
                    &count.to_server
                };
                c.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A TCP relay to `target` that counts the bytes; returns its local port.
fn relay(target: String, count: Arc<Counts>) -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            let (up, down) = (count.clone(), count.clone());
            std::thread::spawn(move || pump(client, server, up, false));
            std::thread::spawn(move || pump(s2, c2, down, true));
        }
    });
    Ok(port)
}

fn orion(url: &str) -> Result<Orion, Error> {
    Ok(Orion::new(&Spec {
        name: "bench".into(),
        kind: "solarwinds".into(),
        url: url.into(),
        domain: None,
        settings: json!({"traps": false, "alerts": false, "nodes": false, "batch": 1000}),
    })?)
}

/// Wall times (ms), client CPU times (ms) and rows read of `polls` polls from `position`.
async fn timed(
    source: &Orion,
    position: &str,
    polls: usize,
) -> Result<(Vec<f64>, Vec<f64>, u64), Error> {
    let mut wall = Vec::with_capacity(polls);
    let mut cpu = Vec::with_capacity(polls);
    let mut read = 0;
    for _ in 0..polls {
        let c0 = thread_cpu_ns();
        let start = Instant::now();
        let batch = source.poll(Some(position)).await?;
        wall.push(start.elapsed().as_secs_f64() * 1000.0);
        if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
            cpu.push(b.saturating_sub(a) as f64 / 1e6);
        }
        read = batch.rows_read;
    }
    wall.sort_by(f64::total_cmp);
    Ok((wall, cpu, read))
}

/// Bytes received and sent per poll from `position`, through the counting relay.
async fn wire(source: &Orion, counts: &Counts, position: &str) -> Result<(u64, u64), Error> {
    // The first poll opens the connection (prelogin, TLS, login): not counted.
    source.poll(Some(position)).await?;
    let n = 5;
    let (d0, u0) = (
        counts.from_server.load(Ordering::Relaxed),
        counts.to_server.load(Ordering::Relaxed),
    );
    for _ in 0..n {
        source.poll(Some(position)).await?;
    }
    // Let the relay threads account for the last bytes.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    Ok((
        (counts.from_server.load(Ordering::Relaxed) - d0) / n,
        (counts.to_server.load(Ordering::Relaxed) - u0) / n,
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let url = std::env::var("BENCH_URL")?;
    let rows: i64 = std::env::var("BENCH_ROWS")?.parse()?;
    let polls: usize = std::env::var("BENCH_POLLS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(20);
    let source = orion(&url)?;
    source.ping().await?;
    let after_new = rows - 100;
    let new_rows = format!("{{\"syslog\":{after_new}}}");
    let idle = format!("{{\"syslog\":{rows}}}");
    source.poll(Some(&new_rows)).await?; // warm-up
    let (new_wall, new_cpu, new_read) = timed(&source, &new_rows, polls).await?;
    let (idle_wall, idle_cpu, idle_read) = timed(&source, &idle, polls).await?;

    // The server's floor: one raw tiberius connection, no Vigie code on the rows.
    let parsed = MssqlUrl::parse(&url)?;
    let tcp = tokio::net::TcpStream::connect((parsed.host.as_str(), parsed.port)).await?;
    tcp.set_nodelay(true)?;
    let mut raw = tiberius::Client::connect(parsed.config(), tcp.compat_write()).await?;
    let sql = source.syslog_sql();
    let count_sql = "SELECT COUNT(*) AS n FROM dbo.SysLog WHERE MsgID > @P1";
    let mut count_ms = Vec::with_capacity(polls);
    let mut select_ms = Vec::with_capacity(polls);
    let mut select_cpu = Vec::with_capacity(polls);
    let mut counted = 0i64;
    let mut selected = 0usize;
    for _ in 0..polls {
        let start = Instant::now();
        let row = raw
            .query(count_sql, &[&after_new])
            .await?
            .into_row()
            .await?;
        count_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        counted = row
            .and_then(|r| {
                r.try_get::<i32, _>(0)
                    .ok()
                    .flatten()
                    .map(i64::from)
                    .or_else(|| r.try_get::<i64, _>(0).ok().flatten())
            })
            .unwrap_or(-1);
        let c0 = thread_cpu_ns();
        let start = Instant::now();
        let got = raw
            .query(&sql, &[&after_new])
            .await?
            .into_first_result()
            .await?;
        select_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
            select_cpu.push(b.saturating_sub(a) as f64 / 1e6);
        }
        selected = got.len();
    }
    drop(raw);

    // Bytes on the wire, through the relay (a second source, so the timings above are direct).
    let counts = Arc::new(Counts::default());
    let port = relay(format!("{}:{}", parsed.host, parsed.port), counts.clone())?;
    let relayed = url.replacen(
        &format!("@{}:{}/", parsed.host, parsed.port),
        &format!("@127.0.0.1:{port}/"),
        1,
    );
    let wire_text = if relayed == url {
        "n/a (give the port in BENCH_URL)".to_owned()
    } else {
        let via = orion(&relayed)?;
        let (new_in, new_out) = wire(&via, &counts, &new_rows).await?;
        let (idle_in, idle_out) = wire(&via, &counts, &idle).await?;
        format!(
            "100-row poll received {new_in} B, sent {new_out} B; idle poll received {idle_in} B, sent {idle_out} B"
        )
    };

    let poll_median = percentile(&new_wall, 0.5);
    let select_median = median(select_ms.clone());
    println!("table {rows} rows (poll statement: {sql})");
    println!(
        "  poll, 100 new rows : read {new_read}, wall median {poll_median:.1} ms (p95 {:.1}), client CPU median {:.2} ms/poll",
        percentile(&new_wall, 0.95),
        median(new_cpu),
    );
    println!(
        "  idle poll          : read {idle_read}, wall median {:.1} ms (p95 {:.1}), client CPU median {:.2} ms/poll",
        percentile(&idle_wall, 0.5),
        percentile(&idle_wall, 0.95),
        median(idle_cpu),
    );
    println!("  wire (TLS records) : {wire_text}");
    println!(
        "  server floor       : COUNT(*) WHERE MsgID > @P1 = {counted}: median {:.1} ms; the poll's statement by tiberius alone ({selected} rows): median {select_median:.1} ms, client CPU median {:.2} ms",
        median(count_ms),
        median(select_cpu),
    );
    println!(
        "  poll − statement   : {:.1} ms (within the scan's jitter on a big table: read the CPU times)",
        poll_median - select_median
    );
    Ok(())
}
