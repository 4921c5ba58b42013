//! Benchmark of the alert board (issue: the alert board): with a store holding N alerts (1 000 000
//! by default; most archived or cleared, as in a store that has run for months), measures against
//! a real `vigie serve`:
//! - the board's first page and filtered pages at 32 concurrent clients (p50/p99, target p99 < 50 ms);
//! - how long a newly pushed alert takes to reach 100 connected live clients (target p99 < 200 ms).
//!
//! `scripts/bench-board [--backend sqlite|postgres|both] [-n N] [--quick]`.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const CLIENTS: usize = 32;
const LIVE_CLIENTS: usize = 100;
const TARGET_PAGE_P99_MS: f64 = 50.0;
const TARGET_LIVE_P99_MS: f64 = 200.0;

struct Args {
    backends: Vec<&'static str>,
    alerts: u64,
    requests: usize,
    live_events: usize,
    pg_url: String,
}

fn args() -> Result<Args> {
    let mut a = Args {
        backends: vec!["sqlite", "postgres"],
        alerts: 1_000_000,
        requests: 3000,
        live_events: 40,
        pg_url: std::env::var("VIGIE_BENCH_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--backend" => {
                a.backends = match it.next().as_deref() {
                    Some("sqlite") => vec!["sqlite"],
                    Some("postgres") => vec!["postgres"],
                    Some("both") => vec!["sqlite", "postgres"],
                    other => bail!("--backend sqlite|postgres|both, not {other:?}"),
                }
            }
            "-n" => a.alerts = it.next().context("-n N")?.parse()?,
            "--quick" => {
                a.alerts = 100_000;
                a.requests = 800;
                a.live_events = 15;
            }
            "--pg-url" => a.pg_url = it.next().context("--pg-url URL")?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let vigie = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("vigie"))
        .context("target dir")?;
    println!(
        "Board benchmark: {} alerts in the store, {CLIENTS} clients, {LIVE_CLIENTS} live clients",
        a.alerts
    );
    let mut lines = Vec::new();
    for backend in &a.backends {
        let line = bench(&vigie, backend, &a)
            .await
            .with_context(|| format!("{backend} run"))?;
        lines.extend(line);
    }
    println!();
    println!("| backend | scenario | requests | p50 ms | p99 ms | target | verdict |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

async fn bench(vigie: &Path, backend: &str, a: &Args) -> Result<Vec<String>> {
    let dir = std::env::temp_dir().join(format!(
        "vigie_bench_board_{}_{backend}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.join("vigie.db").display()),
        _ => {
            let name = format!("vigie_bench_board_{}", std::process::id());
            let admin = vigie_core::store::Store::connect(&vigie_core::store::StoreOptions::new(
                a.pg_url.clone(),
            ))
            .await?;
            if let vigie_core::store::Store::Postgres(pool) = &admin {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name}"
                )))
                .execute(pool)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(pool)
                    .await?;
            }
            admin.close().await;
            let base = a
                .pg_url
                .rsplit_once('/')
                .map_or(a.pg_url.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
    };
    let env = [
        ("VIGIE_DATABASE_URL", url.clone()),
        ("VIGIE_DATA_DIR", dir.join("data").display().to_string()),
    ];
    run(vigie, &env, &["migrate"], None).await?;
    run(
        vigie,
        &env,
        &[
            "user",
            "create",
            "--login",
            "bench",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("a-long-enough-password\n"),
    )
    .await?;
    let token = run(vigie, &env, &["token", "create", "--login", "bench"], None)
        .await?
        .trim()
        .to_owned();
    let started = Instant::now();
    load(&url, a.alerts).await?;
    println!(
        "[{backend}] {} alerts loaded in {:.1} s",
        a.alerts,
        started.elapsed().as_secs_f64()
    );
    let (mut hub, addr) = serve(vigie, &env).await?;
    let mut lines = Vec::new();
    let token = Arc::new(token);
    // Warm-up, as a board that has been open a while.
    let _ = pages(&addr, &token, 100, &["/api/v1/alerts/board"]).await?;
    let first = pages(&addr, &token, a.requests, &["/api/v1/alerts/board"]).await?;
    lines.push(row(
        backend,
        "board, first page",
        &first,
        TARGET_PAGE_P99_MS,
    ));
    let cursor = first_cursor(&addr, &token).await?;
    let filtered_paths: Vec<String> = vec![
        "/api/v1/alerts/board?domain=network".into(),
        "/api/v1/alerts/board?severity=2".into(),
        "/api/v1/alerts/board?domain=systems&severity=1".into(),
        format!("/api/v1/alerts/board?after={cursor}"),
        "/api/v1/alerts?state=archived&domain=backup&limit=100".into(),
        "/api/v1/alerts?resource=res-4242&limit=50".into(),
        "/api/v1/alerts?severity=2&limit=100".into(),
    ];
    let refs: Vec<&str> = filtered_paths.iter().map(String::as_str).collect();
    let filtered = pages(&addr, &token, a.requests, &refs).await?;
    lines.push(row(
        backend,
        "filtered pages (7 kinds)",
        &filtered,
        TARGET_PAGE_P99_MS,
    ));
    let live = live(&addr, &token, a.live_events).await?;
    lines.push(row(
        backend,
        &format!("push → {LIVE_CLIENTS} live clients"),
        &live,
        TARGET_LIVE_P99_MS,
    ));
    let _ = hub.kill().await;
    if backend == "sqlite" {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(lines)
}

fn row(backend: &str, name: &str, samples: &[Duration], target: f64) -> String {
    let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
    let verdict = if p99 < target { "meets" } else { "MISSES" };
    format!(
        "| {backend} | {name} | {} | {p50:.1} | {p99:.1} | < {target} | {verdict} |",
        samples.len()
    )
}

fn percentile(samples: &[Duration], q: f64) -> f64 {
    let mut s: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() as f64 - 1.0) * q).round() as usize]
}

async fn run(
    vigie: &Path,
    env: &[(&str, String)],
    args: &[&str],
    input: Option<&str>,
) -> Result<String> {
    let mut cmd = Command::new(vigie);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.unwrap_or_default().as_bytes())
            .await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("vigie {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fills the store in bulk, inside the database: 70 % archived, 15 % cleared, 15 % open.
async fn load(url: &str, n: u64) -> Result<()> {
    let store =
        vigie_core::store::Store::connect(&vigie_core::store::StoreOptions::new(url)).await?;
    let columns = "source, source_ref, fingerprint, resource, domain, severity, message, state, count, \
                   occurred_at, received_at, last_seen, updated_at";
    let domains = "CASE i % 6 WHEN 0 THEN 'network' WHEN 1 THEN 'systems' WHEN 2 THEN 'applications' \
                   WHEN 3 THEN 'backup' WHEN 4 THEN 'helpdesk' ELSE 'incident' END";
    let states = "CASE WHEN i % 20 < 14 THEN 'archived' WHEN i % 20 < 17 THEN 'cleared' \
                  WHEN i % 20 = 17 THEN 'new' WHEN i % 20 = 18 THEN 'acknowledged' ELSE 'transferred' END";
    match &store {
        vigie_core::store::Store::Postgres(pool) => {
            let sql = format!(
                "INSERT INTO alerts ({columns}) SELECT 'bench', 'r' || i, 'fp-' || i, 'res-' || (i % 5000), {domains}, \
                 (i * 7) % 3, 'message ' || i, {states}, 1, \
                 now() - ((i % 7776000) || ' seconds')::interval, now() - ((i % 7776000) || ' seconds')::interval, \
                 now() - ((i % 7776000) || ' seconds')::interval, now() - ((i % 7776000) || ' seconds')::interval \
                 FROM generate_series(1, {n}) AS i"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
            // A store that has run for a while is vacuumed (autovacuum); a freshly loaded one is
            // not, and its index-only scans would still read the table.
            sqlx::query("VACUUM ANALYZE alerts").execute(pool).await?;
        }
        vigie_core::store::Store::Sqlite(pool, _) => {
            let t = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i % 7776000) || ' seconds')";
            let sql = format!(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n}) \
                 INSERT INTO alerts ({columns}) SELECT 'bench', 'r' || i, 'fp-' || i, 'res-' || (i % 5000), {domains}, \
                 (i * 7) % 3, 'message ' || i, {states}, 1, {t}, {t}, {t}, {t} FROM g"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
            sqlx::query("ANALYZE").execute(pool).await?;
        }
    }
    store.close().await;
    Ok(())
}

async fn serve(vigie: &Path, env: &[(&str, String)]) -> Result<(Child, String)> {
    let mut cmd = Command::new(vigie);
    cmd.arg("serve")
        .env("VIGIE_HTTP_LISTEN", "127.0.0.1:0")
        .env("VIGIE_SYSLOG_LISTEN", "127.0.0.1:0")
        .env("VIGIE_LOG", "warn,vigie=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let plain: String = strip_ansi(&line);
        if let Some(i) = plain.find("listening on http://") {
            let addr = plain[i + 20..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((child, addr));
        }
    }
    bail!("the hub did not start")
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = c != 'm';
        } else if c == '\u{1b}' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

async fn get(addr: &str, token: &str, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await?;
    let status = raw
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, raw))
}

async fn first_cursor(addr: &str, token: &str) -> Result<String> {
    let (_, raw) = get(addr, token, "/api/v1/alerts/board").await?;
    let text = String::from_utf8_lossy(&raw);
    let at = text.find("\"next\":\"").context("a next cursor")? + 8;
    Ok(text[at..at + text[at..].find('"').unwrap_or(0)].to_owned())
}

/// `total` GETs spread over 32 clients, cycling through `paths`; each request's latency.
async fn pages(
    addr: &str,
    token: &Arc<String>,
    total: usize,
    paths: &[&str],
) -> Result<Vec<Duration>> {
    let paths: Arc<Vec<String>> = Arc::new(paths.iter().map(|p| (*p).to_owned()).collect());
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (addr, token, paths) = (addr.to_owned(), token.clone(), paths.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = c;
            while i < total {
                let path = &paths[i % paths.len()];
                let t = Instant::now();
                let (status, _) = get(&addr, &token, path).await?;
                if status != 200 {
                    bail!("{path}: status {status}");
                }
                out.push(t.elapsed());
                i += CLIENTS;
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// 100 stream clients; each pushed alert's arrival time at every client.
async fn live(addr: &str, token: &Arc<String>, events: usize) -> Result<Vec<Duration>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let mut readers = Vec::new();
    for _ in 0..LIVE_CLIENTS {
        let mut tcp = TcpStream::connect(addr).await?;
        let head = format!(
            "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await?;
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let mut pending = String::new();
            loop {
                let n = match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let at = Instant::now();
                pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                while let Some(i) = pending.find("\"resource\":\"live-") {
                    let rest = &pending[i + 12..];
                    let name = rest[..rest.find('"').unwrap_or(0)].to_owned();
                    let _ = tx.send((name, at));
                    pending = pending[i + 12..].to_owned();
                }
            }
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent = std::collections::HashMap::new();
    for e in 0..events {
        let name = format!("live-{e}");
        let body =
            format!(r#"{{"source":"bench","resource":"{name}","message":"live","severity":2}}"#);
        let mut tcp = TcpStream::connect(addr).await?;
        let head = format!(
            "POST /api/v1/alerts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let t = Instant::now();
        tcp.write_all(head.as_bytes()).await?;
        sent.insert(name, t);
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for r in &readers {
        r.abort();
    }
    let mut latencies = Vec::new();
    while let Ok((name, at)) = rx.try_recv() {
        if let Some(t) = sent.get(&name) {
            latencies.push(at.duration_since(*t));
        }
    }
    let expected = events * LIVE_CLIENTS;
    if latencies.len() < expected {
        println!(
            "  warning: {} of {expected} deliveries seen",
            latencies.len()
        );
    }
    Ok(latencies)
}
