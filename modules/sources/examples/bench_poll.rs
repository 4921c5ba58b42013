//! Benchmark of the database sources (run by `scripts/bench-poll`).
//!
//! 1. One poll of a GLPI tickets table of 10 000 and of 1 000 000 rows (with GLPI's own indexes)
//!    holding 100 new rows after the watermark: the connector's read and mapping alone, the same
//!    with the commit of the 100 alerts and the watermark into the hub's store (SQLite), and an
//!    idle poll (nothing new). The time must not depend on the table's size (the `date_mod` index).
//! 2. The CPU of this process (the hub's side) while 10 sources are polled every second, with one
//!    new ticket per second spread over them.
//!
//! MariaDB at `VIGIE_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`); the benchmark
//! database `vigie_bench_poll` is created and dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::json;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::rules::RuleSet;
use vigie_core::domain::Domains;
use vigie_core::store::{Store, StoreOptions};
use vigie_poll::{Health, HealthCell, Poller, Positions};
use vigie_sources::{SourceDef, Sources, StoreHub};

const DB: &str = "vigie_bench_poll";

fn admin_url() -> String {
    std::env::var("VIGIE_TEST_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306".into())
}

fn db_url() -> String {
    format!("{}/{DB}", admin_url().trim_end_matches('/'))
}

const SCHEMA: &str = "CREATE TABLE `glpi_tickets` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `entities_id` int unsigned NOT NULL DEFAULT '0',
  `name` varchar(255) DEFAULT NULL,
  `date` timestamp NULL DEFAULT NULL,
  `closedate` timestamp NULL DEFAULT NULL,
  `solvedate` timestamp NULL DEFAULT NULL,
  `date_mod` timestamp NULL DEFAULT NULL,
  `status` int NOT NULL DEFAULT '1',
  `content` longtext,
  `urgency` int NOT NULL DEFAULT '1',
  `impact` int NOT NULL DEFAULT '1',
  `priority` int NOT NULL DEFAULT '1',
  `itilcategories_id` int unsigned NOT NULL DEFAULT '0',
  `type` int NOT NULL DEFAULT '1',
  `is_deleted` tinyint NOT NULL DEFAULT '0',
  `date_creation` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `date` (`date`),
  KEY `closedate` (`closedate`),
  KEY `status` (`status`),
  KEY `priority` (`priority`),
  KEY `date_mod` (`date_mod`),
  KEY `entities_id` (`entities_id`),
  KEY `itilcategories_id` (`itilcategories_id`),
  KEY `is_deleted` (`is_deleted`),
  KEY `name` (`name`),
  KEY `date_creation` (`date_creation`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC";

const CATEGORIES: &str = "CREATE TABLE `glpi_itilcategories` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `completename` text,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

const ITEMS: &str = "CREATE TABLE `glpi_items_tickets` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `itemtype` varchar(255) DEFAULT NULL,
  `items_id` int unsigned NOT NULL DEFAULT '0',
  `tickets_id` int unsigned NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  KEY `tickets_id` (`tickets_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

const COMPUTERS: &str = "CREATE TABLE `glpi_computers` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

async fn admin() -> mysql_async::Conn {
    mysql_async::Conn::from_url(admin_url())
        .await
        .expect("MariaDB reachable")
}

/// A tickets table of `rows` old (closed) tickets; returns the position after the last one.
async fn fill(conn: &mut mysql_async::Conn, rows: u64) -> String {
    conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
        .await
        .unwrap();
    conn.query_drop(format!("CREATE DATABASE {DB}"))
        .await
        .unwrap();
    conn.query_drop(format!("USE {DB}")).await.unwrap();
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    for ddl in [SCHEMA, CATEGORIES, ITEMS, COMPUTERS] {
        conn.query_drop(ddl).await.unwrap();
    }
    let started = Instant::now();
    let chunk = 100_000u64;
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        conn.query_drop(format!(
            "INSERT INTO glpi_tickets (id,name,date,closedate,date_mod,status,content,urgency,impact,priority,type,date_creation) \
             SELECT seq, CONCAT('old ticket ', seq), TIMESTAMPADD(SECOND, seq * 30, '2015-01-01'), \
             TIMESTAMPADD(SECOND, seq * 30 + 600, '2015-01-01'), TIMESTAMPADD(SECOND, seq * 30 + 600, '2015-01-01'), \
             6, 'done', 3, 3, 3, 1, TIMESTAMPADD(SECOND, seq * 30, '2015-01-01') \
             FROM seq_{}_to_{}",
            done + 1,
            done + n
        ))
        .await
        .unwrap();
        done += n;
    }
    conn.query_drop("ANALYZE TABLE glpi_tickets").await.unwrap();
    eprintln!(
        "  table of {rows} rows filled in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let (date_mod, id): (String, i64) = conn
        .query_first("SELECT DATE_FORMAT(date_mod, '%Y-%m-%dT%H:%i:%S'), id FROM glpi_tickets ORDER BY date_mod DESC, id DESC LIMIT 1")
        .await
        .unwrap()
        .unwrap();
    format!(r#"{{"tickets":{{"key":"{date_mod}","id":{id}}}}}"#)
}

async fn add_new(conn: &mut mysql_async::Conn, from: u64, n: u64) {
    conn.query_drop(format!(
        "INSERT INTO glpi_tickets (id,name,date,date_mod,status,content,urgency,impact,priority,type,date_creation) \
         SELECT seq, CONCAT('new ticket ', seq), TIMESTAMPADD(SECOND, seq, '2025-06-01'), TIMESTAMPADD(SECOND, seq, '2025-06-01'), \
         1 + seq MOD 4, 'help', 1 + seq MOD 5, 3, 1 + seq MOD 6, 1, TIMESTAMPADD(SECOND, seq, '2025-06-01') FROM seq_{from}_to_{}",
        from + n - 1
    ))
    .await
    .unwrap();
}

async fn store(dir: &std::path::Path) -> Store {
    std::fs::create_dir_all(dir).unwrap();
    let store = Store::connect(&StoreOptions::new(format!(
        "sqlite://{}/vigie.db",
        dir.display()
    )))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store
}

fn pipeline(store: &Store) -> Pipeline {
    let rules = RuleSet::shipped(&Domains::default()).unwrap();
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    pipeline
}

fn stats(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    let p95 = ms[((ms.len() as f64 * 0.95) as usize).min(ms.len() - 1)];
    format!(
        "median {median:6.2} ms, p95 {p95:6.2} ms, min {:6.2} ms ({} runs)",
        ms[0],
        ms.len()
    )
}

async fn one_size(rows: u64) {
    eprintln!("table of {rows} rows:");
    let mut conn = admin().await;
    let position = fill(&mut conn, rows).await;
    add_new(&mut conn, rows + 1, 100).await;
    let spec = vigie_sql::SourceSpec {
        name: "glpi-bench".into(),
        kind: "glpi".into(),
        url: db_url(),
        domain: None,
        settings: json!({"computers": false, "settle_seconds": 0}),
    };
    let source = vigie_sql::build(&spec).unwrap();
    // Warm the connection and the statement cache.
    let _ = source.poll(Some(&position)).await.unwrap();
    let mut read = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let batch = source.poll(Some(&position)).await.unwrap();
        read.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(batch.records.len(), 100);
    }
    println!(
        "{rows:>9} rows | read + map 100 new rows          | {}",
        stats(read)
    );

    // The same, committed into the hub's store by the scheduler, once per fresh store.
    let mut full = Vec::new();
    let mut idle = Vec::new();
    for run in 0..10 {
        let dir =
            std::env::temp_dir().join(format!("vigie_bench_poll_{}_{run}", std::process::id()));
        let store = store(&dir).await;
        vigie_core::on_pool!(&store, pool => sqlx::query(
            "INSERT INTO source_checkpoints (source, position, updated_at) VALUES ($1, $2, $3)")
            .bind("glpi-bench").bind(&position).bind(vigie_core::time::now())
            .execute(pool).await.map(drop))
        .unwrap();
        let pipeline = pipeline(&store);
        let hub = Arc::new(StoreHub::new(store.clone(), Arc::new(pipeline.clone())));
        let mut poller = Poller::new(
            source.clone(),
            vigie_poll::PollSettings::new(Duration::from_secs(1)),
            hub,
            HealthCell::new(Health::new("glpi-bench", "glpi", 1)),
        );
        let t = Instant::now();
        let outcome = poller.cycle().await;
        full.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(
            matches!(outcome, vigie_poll::Outcome::Committed { records: 100, .. }),
            "{outcome:?}"
        );
        for _ in 0..3 {
            let t = Instant::now();
            let outcome = poller.cycle().await;
            idle.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(matches!(
                outcome,
                vigie_poll::Outcome::Committed { records: 0, .. }
            ));
        }
        drop(poller);
        drop(pipeline);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "{rows:>9} rows | read + commit 100 alerts (SQLite)| {}",
        stats(full)
    );
    println!(
        "{rows:>9} rows | idle poll (nothing new)          | {}",
        stats(idle)
    );
    let _ = Positions::parse(Some(&position)).unwrap();
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the command name).
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

async fn cpu_of_ten_sources(seconds: u64) {
    let mut conn = admin().await;
    let position = fill(&mut conn, 10_000).await;
    let dir = std::env::temp_dir().join(format!("vigie_bench_poll_cpu_{}", std::process::id()));
    let store = store(&dir).await;
    let pipeline = pipeline(&store);
    let mut defs = Vec::new();
    for i in 0..10 {
        let name = format!("glpi-{i}");
        vigie_core::on_pool!(&store, pool => sqlx::query(
            "INSERT INTO source_checkpoints (source, position, updated_at) VALUES ($1, $2, $3)")
            .bind(&name).bind(&position).bind(vigie_core::time::now())
            .execute(pool).await.map(drop))
        .unwrap();
        vigie_sources::repo::save_settings(
            &store,
            &name,
            &json!({"settle_seconds": 0, "computers": false}),
            None,
        )
        .await
        .unwrap();
        defs.push(SourceDef {
            name,
            kind: "glpi".into(),
            url: db_url(),
            interval: Duration::from_secs(1),
            enabled: true,
            domain: None,
        });
    }
    let sources = Sources::start(store.clone(), Arc::new(pipeline.clone()), defs).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    for s in 0..seconds {
        // One new ticket per second, which every source reads.
        add_new(&mut conn, 20_000 + s, 1).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    let polls: u64 = sources.health().iter().map(|h| h.rows_read).sum();
    sources.stop(Duration::from_secs(5)).await;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "10 sources every 1 s for {wall:.0} s: hub process CPU {:.2} % of one core ({:.2} % of the {cores} cores); {polls} rows read",
        cpu / wall * 100.0,
        cpu / wall * 100.0 / cores as f64
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main]
async fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 1_000_000]
    } else {
        sizes
    };
    println!(
        "GLPI source poll, {} (release build: {})",
        vigie_sql::client::redact_url(&db_url()),
        !cfg!(debug_assertions)
    );
    for rows in sizes {
        one_size(rows).await;
    }
    cpu_of_ten_sources(30).await;
    let mut conn = admin().await;
    conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
        .await
        .unwrap();
}
