//! Ingest benchmark of the Vigie hub: how fast `POST /api/v1/alerts` accepts alerts, with which
//! latency, and what the hub costs in start-up time and memory.
//!
//! For each backend (SQLite in a fresh temporary directory, PostgreSQL in a fresh database
//! `vigie_bench_<random>` created with `psql` through `--pg-url` and dropped at the end) the
//! program creates an operator and an API token with `vigie user create` / `vigie token create`,
//! starts `vigie serve` on free ports and measures:
//!
//! 1. start-up: time from spawning `vigie serve` to the first `GET /readyz` answering 200
//!    (polled every 5 ms);
//! 2. idle resident memory: `VmRSS` of the serve process (`/proc/PID/status`) after readiness and
//!    one idle second, before any load;
//! 3. five scenarios of N alerts each, reporting alerts/s and the p50 / p99 / max latency of the
//!    requests:
//!    a. batches of B new alerts (unique resources, unique `source_ref`), 4 connections;
//!    b. batches of B duplicates (every record one of 50 fingerprints), 4 connections;
//!    c. single pushes of new alerts, C connections;
//!    d. single pushes of duplicates, C connections;
//!    e. batches of B replays of scenario a (same `source_ref`s: idempotent), 4 connections;
//! 4. resident memory after the load.
//!
//! Each concurrent client owns one persistent keep-alive HTTP/1.1 connection (a minimal client
//! written here over a tokio `TcpStream`, so that the benchmark needs no HTTP crate). Every
//! request is built before the clock starts, so JSON building is not measured. Every answer must
//! be 202; the `ids` of the answers are also checked (a: N distinct alerts, b/d: 50, c: N, e: the
//! ids of a again). Any failure is reported and makes the program exit non-zero.
//!
//! Run it with `scripts/bench [options]`, or:
//!
//! ```text
//! cargo build --release --bin vigie --example ingest_bench
//! cargo run --release --example ingest_bench -- [--backend sqlite|postgres|both] [-n N]
//!     [--concurrency C] [--batch B] [--quick] [--pg-url URL] [--vigie PATH]
//! ```
//!
//! The hub and the load generator share the machine: the figures are those of the pair.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Barrier;

/// Number of distinct fingerprints in the duplicate scenarios.
const DUP_FINGERPRINTS: usize = 50;
/// A request that takes longer than this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the hub may take to answer `/readyz` before the run is abandoned.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The source name of every benchmark record.
const SOURCE: &str = "bench";

// Targets from the issue.
const TARGET_BATCH_SQLITE: f64 = 50_000.0;
const TARGET_BATCH_PG: f64 = 20_000.0;
const TARGET_SINGLE_RATE: f64 = 5_000.0;
const TARGET_SINGLE_P99_MS: f64 = 20.0;
const TARGET_IDLE_RSS_MB: f64 = 40.0;
const TARGET_STARTUP_MS: f64 = 1_000.0;

#[derive(Parser, Debug)]
#[command(
    about = "Ingest benchmark of the Vigie hub (POST /api/v1/alerts)",
    args_override_self = true
)]
struct Args {
    /// Which database backend(s) to benchmark.
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
    /// Admin URL of the PostgreSQL server, used to CREATE and DROP a fresh database.
    #[arg(
        long,
        env = "VIGIE_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_url: String,
    /// The `vigie` binary (default: target/release/vigie next to this example).
    #[arg(long)]
    vigie: Option<PathBuf>,
    /// Alerts pushed per scenario (default 100000, or 10000 with --quick).
    #[arg(short = 'n')]
    n: Option<usize>,
    /// Concurrent connections of the single-push scenarios.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Concurrent connections of the batch scenarios.
    #[arg(long, default_value_t = 4)]
    batch_concurrency: usize,
    /// Records per request in the batch scenarios.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Smoke run: 10000 alerts per scenario.
    #[arg(long)]
    quick: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn batch_target(self) -> f64 {
        match self {
            Backend::Sqlite => TARGET_BATCH_SQLITE,
            Backend::Postgres => TARGET_BATCH_PG,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BatchNew,
    BatchDup,
    SingleNew,
    SingleDup,
    BatchReplay,
}

impl Kind {
    fn is_batch(self) -> bool {
        matches!(self, Kind::BatchNew | Kind::BatchDup | Kind::BatchReplay)
    }
}

/// Settings of one run, derived from the arguments.
struct Settings {
    n: usize,
    concurrency: usize,
    batch_concurrency: usize,
    batch: usize,
    pg_url: String,
    vigie: PathBuf,
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("ingest_bench: error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs every requested backend; `Ok(false)` when some figure could not be measured cleanly.
async fn run() -> Result<bool> {
    let args = Args::parse();
    clock_ticks(); // Read once now, not while a scenario is timed.
    let n = args.n.unwrap_or(if args.quick { 10_000 } else { 100_000 });
    if n == 0 || args.concurrency == 0 || args.batch_concurrency == 0 || args.batch == 0 {
        bail!("-n, --concurrency, --batch-concurrency and --batch must be positive");
    }
    let vigie = match args.vigie {
        Some(p) => p,
        None => default_vigie()?,
    };
    if !vigie.is_file() {
        bail!(
            "hub binary {} not found: build it with `cargo build --release --bin vigie` or pass --vigie",
            vigie.display()
        );
    }
    let settings = Settings {
        n,
        concurrency: args.concurrency,
        batch_concurrency: args.batch_concurrency,
        batch: args.batch,
        pg_url: args.pg_url,
        vigie,
    };
    let backends: &[Backend] = match args.backend {
        BackendChoice::Sqlite => &[Backend::Sqlite],
        BackendChoice::Postgres => &[Backend::Postgres],
        BackendChoice::Both => &[Backend::Sqlite, Backend::Postgres],
    };
    println!(
        "Vigie ingest benchmark: hub {}, {} alerts per scenario, batch {}, batch concurrency {}, \
         single-push concurrency {}, {} CPU(s)",
        settings.vigie.display(),
        settings.n,
        settings.batch,
        settings.batch_concurrency,
        settings.concurrency,
        std::thread::available_parallelism().map_or(0, |p| p.get()),
    );

    let mut reports = Vec::new();
    let mut aborted = Vec::new();
    let mut clean = true;
    for &backend in backends {
        println!("\n== {} ==", backend.name());
        match bench_backend(backend, &settings).await {
            Ok(report) => {
                clean &= report.failures() == 0 && report.problems.is_empty();
                reports.push(report);
            }
            Err(e) => {
                eprintln!("{}: benchmark aborted: {e:#}", backend.name());
                aborted.push((backend, format!("{e:#}")));
                clean = false;
            }
        }
    }

    println!("\n{}", render(&reports, &aborted, &settings));
    if !clean {
        println!("\nRESULT: FAILED (see the errors and problems above); exiting non-zero");
    }
    Ok(clean)
}

/// `target/release/vigie` next to this example (`target/release/examples/ingest_bench`).
fn default_vigie() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot derive the target directory from {}", exe.display()))?;
    Ok(dir.join("vigie"))
}

// ---------------------------------------------------------------------------------------------
// One backend

/// What was measured on one backend.
struct BackendReport {
    backend: Backend,
    startup: Duration,
    idle_rss_kb: u64,
    after_rss_kb: u64,
    scenarios: Vec<ScenarioReport>,
    /// Answers that contradict the contract (wrong ids, missing deduplication, ...).
    problems: Vec<String>,
    /// What the hub logged (at `warn` level or above) during the run.
    hub_log: Vec<String>,
}

impl BackendReport {
    fn failures(&self) -> usize {
        self.scenarios.iter().map(|s| s.failures).sum()
    }
}

/// A hub under test and everything to clean up after it; cleaning also happens on drop, so that
/// an error or a panic never leaves a hub running, a directory behind or a database in place.
struct Hub {
    dir: PathBuf,
    pg: Option<(String, String)>, // (admin URL, database name)
    child: Option<Child>,
    env: Vec<(String, String)>,
    http: String,
}

impl Hub {
    fn log_path(&self) -> PathBuf {
        self.dir.join("serve.log")
    }

    fn command(&self, vigie: &Path) -> Command {
        let mut cmd = Command::new(vigie);
        for (key, _) in std::env::vars() {
            if key.starts_with("VIGIE_") && !key.starts_with("VIGIE_BENCH") {
                cmd.env_remove(key);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.kill_on_drop(true);
        cmd
    }

    /// Stops the hub (SIGTERM, then SIGKILL after 5 s), drops the database, removes the directory.
    async fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("hub did not stop within 5 s of SIGTERM: killing it");
                    let _ = child.kill().await;
                }
            }
        }
        self.cleanup_sync();
    }

    fn cleanup_sync(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
        }
        if let Some((admin, db)) = self.pg.take() {
            let out = std::process::Command::new("psql")
                .arg(&admin)
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!(
                    "could not drop database {db}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => eprintln!("could not drop database {db}: {e}"),
            }
        }
        if self.dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            eprintln!("could not remove {}: {e}", self.dir.display());
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.cleanup_sync();
    }
}

async fn bench_backend(backend: Backend, s: &Settings) -> Result<BackendReport> {
    let tag = random_tag();
    let dir = std::env::temp_dir().join(format!("vigie-bench-{tag}"));
    std::fs::create_dir_all(dir.join("data"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let http_port = free_port()?;
    let syslog_port = free_port()?;
    let http = format!("127.0.0.1:{http_port}");
    let mut hub = Hub {
        dir: dir.clone(),
        pg: None,
        child: None,
        env: Vec::new(),
        http: http.clone(),
    };

    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("vigie.db").display()),
        Backend::Postgres => {
            let db = format!("vigie_bench_{tag}");
            psql(&s.pg_url, &format!("CREATE DATABASE {db}"))
                .await
                .context(
                    "creating the benchmark database (is PostgreSQL reachable? see --pg-url)",
                )?;
            hub.pg = Some((s.pg_url.clone(), db.clone()));
            with_database(&s.pg_url, &db)?
        }
    };
    hub.env = vec![
        ("VIGIE_DATABASE_URL".into(), database_url),
        ("VIGIE_HTTP_LISTEN".into(), http.clone()),
        (
            "VIGIE_SYSLOG_LISTEN".into(),
            format!("127.0.0.1:{syslog_port}"),
        ),
        (
            "VIGIE_DATA_DIR".into(),
            dir.join("data").display().to_string(),
        ),
        ("VIGIE_LOG".into(), "warn".into()),
    ];

    let result = measure(backend, s, &mut hub).await;
    let log = std::fs::read_to_string(hub.log_path()).unwrap_or_default();
    hub.shutdown().await;
    match result {
        Ok(mut report) => {
            report.hub_log = log
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            Ok(report)
        }
        Err(e) => {
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            if !tail.is_empty() {
                eprintln!("last lines of the hub log:");
                for l in tail.iter().rev() {
                    eprintln!("  {}", truncate(l, 300));
                }
            }
            Err(e)
        }
    }
}

async fn measure(backend: Backend, s: &Settings, hub: &mut Hub) -> Result<BackendReport> {
    // User and token (these run the migrations).
    let password = format!("bench-{}-{}", random_tag(), random_tag());
    let mut cmd = hub.command(&s.vigie);
    cmd.args([
        "user",
        "create",
        "--login",
        "bench",
        "--role",
        "operator",
        "--password-stdin",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning `vigie user create`")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(password.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "`vigie user create` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let out = hub
        .command(&s.vigie)
        .args(["token", "create", "--login", "bench"])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running `vigie token create`")?;
    if !out.status.success() {
        bail!(
            "`vigie token create` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("`vigie token create` printed no token"))?;

    // Start-up.
    let log = std::fs::File::create(hub.log_path())?;
    let log_err = log.try_clone()?;
    let mut cmd = hub.command(&s.vigie);
    cmd.arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    let spawned = Instant::now();
    hub.child = Some(cmd.spawn().context("spawning `vigie serve`")?);
    let pid = hub
        .child
        .as_ref()
        .and_then(Child::id)
        .ok_or_else(|| anyhow!("`vigie serve` has no pid"))?;
    loop {
        if spawned.elapsed() > READY_TIMEOUT {
            bail!("/readyz did not answer 200 within {READY_TIMEOUT:?}");
        }
        if let Some(child) = hub.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("`vigie serve` exited before being ready ({status})");
        }
        if readyz(&hub.http).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let startup = spawned.elapsed();
    println!("start-up to /readyz: {:.0} ms", ms(startup));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kb = vm_rss_kb(pid)?;
    println!("idle RSS: {:.1} MB", mb(idle_rss_kb));

    // Scenarios.
    let n = s.n;
    let tag = random_tag();
    let batch_new = Arc::new(build_requests(
        &hub.http,
        &token,
        &new_records(n, &format!("a{tag}")),
        s.batch,
    ));
    let batch_dup = Arc::new(build_requests(
        &hub.http,
        &token,
        &dup_records(n, "b"),
        s.batch,
    ));
    let single_new = Arc::new(build_requests(
        &hub.http,
        &token,
        &new_records(n, &format!("c{tag}")),
        1,
    ));
    let single_dup = Arc::new(build_requests(&hub.http, &token, &dup_records(n, "d"), 1));

    let plan = [
        (Kind::BatchNew, &batch_new, s.batch_concurrency),
        (Kind::BatchDup, &batch_dup, s.batch_concurrency),
        (Kind::SingleNew, &single_new, s.concurrency),
        (Kind::SingleDup, &single_dup, s.concurrency),
        (Kind::BatchReplay, &batch_new, s.batch_concurrency),
    ];
    let mut scenarios = Vec::new();
    let mut problems = Vec::new();
    for (kind, reqs, conc) in plan {
        let label = scenario_label(kind, s.batch, conc);
        let rep = run_scenario(kind, &label, &hub.http, Arc::clone(reqs), conc, pid).await?;
        println!(
            "{:<26} {:>8} alerts {:>10.1} alerts/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  \
             failures {}  cpu hub {:.0}% bench {:.0}%",
            rep.label,
            rep.alerts,
            rep.rate(),
            rep.p50_ms,
            rep.p99_ms,
            rep.max_ms,
            rep.failures,
            rep.hub_cpu_pct,
            rep.bench_cpu_pct,
        );
        for e in &rep.errors {
            println!("    error: {e}");
        }
        if let Some(child) = hub.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("`vigie serve` died during scenario {label} ({status})");
        }
        scenarios.push(rep);
    }
    check_ids(&scenarios, &mut problems);
    for p in &problems {
        println!("problem: {p}");
    }

    let after_rss_kb = vm_rss_kb(pid)?;
    println!("RSS after load: {:.1} MB", mb(after_rss_kb));

    Ok(BackendReport {
        backend,
        startup,
        idle_rss_kb,
        after_rss_kb,
        scenarios,
        problems,
        hub_log: Vec::new(),
    })
}

fn scenario_label(kind: Kind, batch: usize, conc: usize) -> String {
    let what = match kind {
        Kind::BatchNew => format!("batch{batch} new"),
        Kind::BatchDup => format!("batch{batch} dup"),
        Kind::SingleNew => "single new".to_owned(),
        Kind::SingleDup => "single dup".to_owned(),
        Kind::BatchReplay => format!("batch{batch} replay"),
    };
    format!("{what} (c={conc})")
}

/// Checks the `ids` of the answers against what the contract promises.
fn check_ids(scenarios: &[ScenarioReport], problems: &mut Vec<String>) {
    let mut first_new: Option<&ScenarioReport> = None;
    for sc in scenarios {
        let answered = sc.ids.iter().filter(|i| i.is_some()).count();
        if answered < sc.ids.len() {
            let missing = sc.ids.len() - answered;
            if sc.failures < missing {
                problems.push(format!(
                    "{}: {} 202 answer(s) without a usable `ids` array",
                    sc.label,
                    missing - sc.failures
                ));
            }
        }
        let mut wrong_len = 0;
        for (ids, &count) in sc.ids.iter().zip(&sc.records_per_request) {
            if let Some(ids) = ids
                && ids.len() != count
            {
                wrong_len += 1;
            }
        }
        if wrong_len > 0 {
            problems.push(format!(
                "{}: {wrong_len} answer(s) whose `ids` count differs from the records sent",
                sc.label
            ));
        }
        let distinct: HashSet<String> = sc
            .ids
            .iter()
            .flatten()
            .flatten()
            .map(Value::to_string)
            .collect();
        match sc.kind {
            Kind::BatchNew | Kind::SingleNew => {
                if sc.failures == 0 && distinct.len() != sc.alerts {
                    problems.push(format!(
                        "{}: {} distinct alert ids for {} new alerts",
                        sc.label,
                        distinct.len(),
                        sc.alerts
                    ));
                }
                if sc.kind == Kind::BatchNew {
                    first_new = Some(sc);
                }
            }
            Kind::BatchDup | Kind::SingleDup => {
                let expected = DUP_FINGERPRINTS.min(sc.alerts);
                if sc.failures == 0 && distinct.len() != expected {
                    problems.push(format!(
                        "{}: {} distinct alert ids for {expected} fingerprints (deduplication)",
                        sc.label,
                        distinct.len()
                    ));
                }
            }
            Kind::BatchReplay => {
                if let Some(orig) = first_new {
                    let differing = orig
                        .ids
                        .iter()
                        .zip(&sc.ids)
                        .filter(|(a, b)| a.is_some() && b.is_some() && a != b)
                        .count();
                    if differing > 0 {
                        problems.push(format!(
                            "{}: {differing} replayed request(s) answered other ids than the \
                             original push (idempotency by source_ref)",
                            sc.label
                        ));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Records and requests

/// Unique alerts: distinct resources and messages, unique `source_ref`.
fn new_records(n: usize, prefix: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "source": SOURCE,
                "resource": format!("host-{prefix}-{i}"),
                "message": format!("CPU load high on host-{prefix}-{i}"),
                "severity": i % 3,
                "source_ref": format!("{prefix}-{i}"),
            })
        })
        .collect()
}

/// Duplicates: every record is one of [`DUP_FINGERPRINTS`] fingerprints (resource spelled in
/// letters; the numbers of the message vary but are masked by the fingerprint).
fn dup_records(n: usize, prefix: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let k = i % DUP_FINGERPRINTS;
            let letters: String = [b'a' + (k / 26) as u8, b'a' + (k % 26) as u8]
                .iter()
                .map(|&b| b as char)
                .collect();
            json!({
                "source": SOURCE,
                "resource": format!("db-{prefix}-{letters}"),
                "message": format!("Disk usage at {}% on /var", 80 + i % 20),
                "severity": 1,
            })
        })
        .collect()
}

/// A ready-to-send HTTP request and the number of records it carries.
struct Request {
    bytes: Vec<u8>,
    records: usize,
}

/// Requests of `batch` records (a JSON array) or, for `batch == 1`, of one JSON object.
fn build_requests(host: &str, token: &str, records: &[Value], batch: usize) -> Vec<Request> {
    records
        .chunks(batch)
        .map(|chunk| {
            let body = if batch == 1 {
                chunk.first().map(Value::to_string).unwrap_or_default()
            } else {
                Value::Array(chunk.to_vec()).to_string()
            };
            let mut bytes = format!(
                "POST /api/v1/alerts HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nAccept: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            bytes.extend_from_slice(body.as_bytes());
            Request {
                bytes,
                records: chunk.len(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Load

struct ScenarioReport {
    kind: Kind,
    label: String,
    alerts: usize,
    elapsed: Duration,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Requests not answered 202 (error answers, I/O errors, timeouts).
    failures: usize,
    /// The first error messages.
    errors: Vec<String>,
    /// The `ids` of each request's answer, by request index.
    ids: Vec<Option<Vec<Value>>>,
    records_per_request: Vec<usize>,
    /// CPU used by the hub process and by this benchmark, in % of one CPU.
    hub_cpu_pct: f64,
    bench_cpu_pct: f64,
}

impl ScenarioReport {
    fn rate(&self) -> f64 {
        self.alerts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct Sample {
    index: usize,
    latency: Duration,
    /// The `ids` of a 202 answer (None when it has none), or what went wrong.
    outcome: Result<Option<Vec<Value>>, String>,
}

async fn run_scenario(
    kind: Kind,
    label: &str,
    addr: &str,
    reqs: Arc<Vec<Request>>,
    concurrency: usize,
    hub_pid: u32,
) -> Result<ScenarioReport> {
    let concurrency = concurrency.min(reqs.len()).max(1);
    // Connect everybody before the clock starts.
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(Conn::connect(addr).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut tasks = Vec::with_capacity(concurrency);
    for conn in conns {
        let reqs = Arc::clone(&reqs);
        let next = Arc::clone(&next);
        let barrier = Arc::clone(&barrier);
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            client(conn, &addr, &reqs, &next, &barrier).await
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let hub_cpu0 = cpu_seconds(format!("/proc/{hub_pid}/stat"));
    let bench_cpu0 = cpu_seconds("/proc/self/stat".to_owned());
    let mut samples = Vec::with_capacity(reqs.len());
    for t in tasks {
        samples.extend(t.await.context("client task panicked")?);
    }
    let elapsed = start.elapsed();
    let hub_cpu = cpu_seconds(format!("/proc/{hub_pid}/stat")) - hub_cpu0;
    let bench_cpu = cpu_seconds("/proc/self/stat".to_owned()) - bench_cpu0;

    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    let mut ids = vec![None; reqs.len()];
    let mut failures = 0;
    let mut errors = Vec::new();
    for s in samples {
        match s.outcome {
            Ok(v) => {
                if let Some(slot) = ids.get_mut(s.index) {
                    *slot = v;
                }
            }
            Err(e) => {
                failures += 1;
                if errors.len() < 5 {
                    errors.push(format!("request #{}: {e}", s.index));
                }
            }
        }
    }
    Ok(ScenarioReport {
        kind,
        label: label.to_owned(),
        alerts: reqs.iter().map(|r| r.records).sum(),
        elapsed,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        max_ms: latencies.last().map_or(0.0, |d| ms(*d)),
        failures,
        errors,
        ids,
        records_per_request: reqs.iter().map(|r| r.records).collect(),
        hub_cpu_pct: 100.0 * hub_cpu / elapsed.as_secs_f64().max(1e-9),
        bench_cpu_pct: 100.0 * bench_cpu / elapsed.as_secs_f64().max(1e-9),
    })
}

/// One client: takes the next request until none is left, on its own keep-alive connection.
async fn client(
    conn: Conn,
    addr: &str,
    reqs: &[Request],
    next: &AtomicUsize,
    barrier: &Barrier,
) -> Vec<Sample> {
    let mut conn = Some(conn);
    let mut samples = Vec::new();
    barrier.wait().await;
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = reqs.get(index) else { break };
        let t0 = Instant::now();
        let result = match conn.as_mut() {
            Some(c) => tokio::time::timeout(REQUEST_TIMEOUT, c.exchange(&req.bytes))
                .await
                .unwrap_or_else(|_| Err(anyhow!("no answer within {REQUEST_TIMEOUT:?}"))),
            None => match Conn::connect(addr).await {
                Ok(c) => {
                    let c = conn.insert(c);
                    tokio::time::timeout(REQUEST_TIMEOUT, c.exchange(&req.bytes))
                        .await
                        .unwrap_or_else(|_| Err(anyhow!("no answer within {REQUEST_TIMEOUT:?}")))
                }
                Err(e) => Err(e),
            },
        };
        let latency = t0.elapsed();
        let outcome = match result {
            Ok(resp) => {
                if resp.close {
                    conn = None;
                }
                if resp.status == 202 {
                    // A 202 without `ids` is reported by check_ids, not as a failed request.
                    Ok(parse_ids(&resp.body))
                } else {
                    Err(format!(
                        "HTTP {}: {}",
                        resp.status,
                        truncate(&String::from_utf8_lossy(&resp.body), 300)
                    ))
                }
            }
            Err(e) => {
                conn = None;
                Err(format!("{e:#}"))
            }
        };
        samples.push(Sample {
            index,
            latency,
            outcome,
        });
    }
    samples
}

fn parse_ids(body: &[u8]) -> Option<Vec<Value>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("ids")?.as_array().cloned()
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 client

struct Conn {
    stream: BufReader<TcpStream>,
    line: String,
}

struct Response {
    status: u16,
    body: Vec<u8>,
    /// The server closes the connection after this answer.
    close: bool,
}

impl Conn {
    async fn connect(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::with_capacity(16 * 1024, stream),
            line: String::new(),
        })
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Response> {
        self.stream.get_mut().write_all(request).await?;
        self.read_response().await
    }

    async fn read_line(&mut self) -> Result<&str> {
        self.line.clear();
        let n = self.stream.read_line(&mut self.line).await?;
        if n == 0 {
            bail!("connection closed by the hub");
        }
        Ok(self.line.trim_end_matches(['\r', '\n']))
    }

    async fn read_response(&mut self) -> Result<Response> {
        let status_line = self.read_line().await?;
        let mut parts = status_line.split_whitespace();
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut close = version == "HTTP/1.0";
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                bail!("bad header line {line:?}");
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse().context("bad Content-Length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let size_line = self.read_line().await?;
                let size_hex = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .with_context(|| format!("bad chunk size {size_line:?}"))?;
                if size == 0 {
                    // Trailers until the empty line.
                    while !self.read_line().await?.is_empty() {}
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.stream.read_exact(&mut body[start..]).await?;
                self.read_line().await?;
            }
        } else if let Some(len) = content_length {
            body.resize(len, 0);
            self.stream.read_exact(&mut body).await?;
        } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
            self.stream.read_to_end(&mut body).await?;
            close = true;
        }
        Ok(Response {
            status,
            body,
            close,
        })
    }
}

/// One `GET /readyz` on a fresh connection: true on 200.
async fn readyz(addr: &str) -> bool {
    let attempt = async {
        let mut c = Conn::connect(addr).await?;
        let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        c.exchange(req.as_bytes()).await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(Response { status: 200, .. }))
    )
}

// ---------------------------------------------------------------------------------------------
// Output

fn render(reports: &[BackendReport], aborted: &[(Backend, String)], s: &Settings) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<26} {:>8} {:>11} {:>8} {:>8} {:>9} {:>5} {:>5} {:>5}  {:<26} verdict",
        "backend",
        "scenario",
        "alerts",
        "alerts/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "fail",
        "hub%",
        "cli%",
        "target"
    );
    for r in reports {
        for sc in &r.scenarios {
            let (target, verdict) = verdict(r.backend, sc, s);
            let _ = writeln!(
                out,
                "{:<9} {:<26} {:>8} {:>11.1} {:>8.2} {:>8.2} {:>9.2} {:>5} {:>5.0} {:>5.0}  {:<26} {}",
                r.backend.name(),
                sc.label,
                sc.alerts,
                sc.rate(),
                sc.p50_ms,
                sc.p99_ms,
                sc.max_ms,
                sc.failures,
                sc.hub_cpu_pct,
                sc.bench_cpu_pct,
                target,
                verdict
            );
        }
        let startup = ms(r.startup);
        let idle = mb(r.idle_rss_kb);
        let _ = writeln!(
            out,
            "{:<9} start-up to /readyz: {startup:.0} ms ({}); idle RSS: {idle:.1} MB ({}); \
             RSS after load: {:.1} MB",
            r.backend.name(),
            pass_fail(
                startup < TARGET_STARTUP_MS,
                &format!("< {TARGET_STARTUP_MS:.0} ms")
            ),
            pass_fail(
                idle < TARGET_IDLE_RSS_MB,
                &format!("< {TARGET_IDLE_RSS_MB:.0} MB")
            ),
            mb(r.after_rss_kb),
        );
        for p in &r.problems {
            let _ = writeln!(out, "{:<9} PROBLEM: {p}", r.backend.name());
        }
        if !r.hub_log.is_empty() {
            let _ = writeln!(
                out,
                "{:<9} note: the hub logged {} line(s) at warn level or above; first ones:",
                r.backend.name(),
                r.hub_log.len()
            );
            for l in r.hub_log.iter().take(5) {
                let _ = writeln!(out, "{:<9}   {}", "", truncate(l, 300));
            }
        }
        let _ = writeln!(out);
    }
    for (backend, e) in aborted {
        let _ = writeln!(out, "{:<9} ABORTED: {}\n", backend.name(), truncate(e, 400));
    }
    let _ = writeln!(
        out,
        "Targets: batches of 100: >= {TARGET_BATCH_SQLITE:.0} alerts/s on SQLite, \
         >= {TARGET_BATCH_PG:.0} on PostgreSQL; single pushes at concurrency 16: \
         >= {TARGET_SINGLE_RATE:.0} alerts/s with p99 < {TARGET_SINGLE_P99_MS:.0} ms; \
         idle RSS < {TARGET_IDLE_RSS_MB:.0} MB; start-up < 1 s."
    );
    let _ = writeln!(
        out,
        "For scale: Alerta (a Python alert hub) ingests about 100 alerts/s with p99 about 200 ms \
         on this machine."
    );
    let _ = write!(
        out,
        "MB = 10^6 bytes; latencies are per HTTP request (a batch request carries {} alerts); \
         hub% / cli%: CPU used by the hub / by this load generator, in % of one CPU, out of {} \
         CPU(s) (the database server's own CPU is not counted).",
        s.batch,
        std::thread::available_parallelism().map_or(0, |p| p.get()),
    );
    out
}

/// The target of a scenario and whether it is met; targets hold only for the parameters they
/// were stated with (batches of 100, single pushes at concurrency 16).
fn verdict(backend: Backend, sc: &ScenarioReport, s: &Settings) -> (String, String) {
    if sc.kind.is_batch() {
        let target = backend.batch_target();
        if s.batch != 100 {
            return ("(stated for batch 100)".into(), "-".into());
        }
        let text = format!(">= {target:.0}/s");
        let ok = sc.rate() >= target && sc.failures == 0;
        (text, verdict_word(ok))
    } else {
        let text = format!(">= {TARGET_SINGLE_RATE:.0}/s, p99 < {TARGET_SINGLE_P99_MS:.0} ms");
        if s.concurrency != 16 {
            return ("(stated for c=16)".into(), "-".into());
        }
        let ok =
            sc.rate() >= TARGET_SINGLE_RATE && sc.p99_ms < TARGET_SINGLE_P99_MS && sc.failures == 0;
        (text, verdict_word(ok))
    }
}

fn verdict_word(ok: bool) -> String {
    if ok { "PASS" } else { "FAIL" }.to_owned()
}

fn pass_fail(ok: bool, target: &str) -> String {
    format!("target {target}: {}", verdict_word(ok))
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).map_or(0.0, |d| ms(*d))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// 12 random hex digits (std's randomly keyed hasher over the time and the pid).
fn random_tag() -> String {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// User + system CPU seconds of a process, from `/proc/PID/stat` (0 when unreadable).
fn cpu_seconds(path: String) -> f64 {
    let Ok(stat) = std::fs::read_to_string(&path) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3, utime field 14, stime field 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown), read once.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn vm_rss_kb(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in {path}"))
}

async fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The admin URL with its database replaced by `db` (query string kept).
fn with_database(admin: &str, db: &str) -> Result<String> {
    let scheme_end = admin
        .find("://")
        .ok_or_else(|| anyhow!("--pg-url {admin:?} is not a URL"))?
        + 3;
    let (base, query) = match admin.find('?') {
        Some(q) => admin.split_at(q),
        None => (admin, ""),
    };
    let authority_end = base
        .get(scheme_end..)
        .and_then(|rest| rest.find('/'))
        .map_or(base.len(), |i| scheme_end + i);
    let authority = base.get(..authority_end).unwrap_or(base);
    Ok(format!("{authority}/{db}{query}"))
}
