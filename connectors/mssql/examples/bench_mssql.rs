//! One poll of Orion's `SysLog` with 100 new rows after the watermark, timed (see
//! `scripts/bench-mssql`, which generates the table and starts the TDS server).
//!
//! Environment: `BENCH_URL` (the server), `BENCH_ROWS` (the table's size: the newest `MsgID`),
//! `BENCH_POLLS` (how many polls to time, 20).

use std::time::Instant;

use serde_json::json;
use vigie_mssql::{Spec, build};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("BENCH_URL")?;
    let rows: i64 = std::env::var("BENCH_ROWS")?.parse()?;
    let polls: usize = std::env::var("BENCH_POLLS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(20);
    let source = build(&Spec {
        name: "bench".into(),
        kind: "solarwinds".into(),
        url,
        domain: None,
        settings: json!({"traps": false, "alerts": false, "nodes": false, "batch": 1000}),
    })?;
    source.ping().await?;
    let new_rows = format!("{{\"syslog\":{}}}", rows - 100);
    let idle = format!("{{\"syslog\":{rows}}}");
    let timed = |position: String| {
        let source = source.clone();
        async move {
            let mut times = Vec::with_capacity(polls);
            let mut read = 0;
            for _ in 0..polls {
                let start = Instant::now();
                let batch = source.poll(Some(&position)).await?;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                read = batch.rows_read;
            }
            times.sort_by(f64::total_cmp);
            Ok::<_, vigie_poll::SourceError>((times, read))
        }
    };
    let (new_times, new_read) = timed(new_rows).await?;
    let (idle_times, idle_read) = timed(idle).await?;
    println!(
        "table {rows} rows | 100 new rows: read {new_read}, median {:.1} ms, p95 {:.1} ms | idle poll: read {idle_read}, median {:.1} ms, p95 {:.1} ms",
        percentile(&new_times, 0.5),
        percentile(&new_times, 0.95),
        percentile(&idle_times, 0.5),
        percentile(&idle_times, 0.95),
    );
    Ok(())
}
