//! A rough rate measurement, not run by default (`cargo test --release -p vigie-syslog --test it
//! -- --ignored --nocapture rate`): TCP messages received, framed, parsed and queued per second.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use vigie_syslog::{Batcher, SyslogConfig};

use crate::{config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run it in release mode"]
async fn tcp_rate() {
    const CONNECTIONS: usize = 4;
    const EACH: usize = 250_000;
    let (server, rx) = start(&SyslogConfig {
        udp: String::new(),
        ..config()
    })
    .await;
    let to = server.tcp_addr().unwrap();
    let consumer = tokio::spawn(async move {
        let mut batches = Batcher::new(rx, 500, Duration::from_millis(200));
        let mut n = 0;
        while n < CONNECTIONS * EACH {
            match batches.next_batch().await {
                Some(b) => n += b.len(),
                None => break,
            }
        }
        n
    });
    let started = Instant::now();
    let mut senders = Vec::new();
    for c in 0..CONNECTIONS {
        senders.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(to).await.unwrap();
            let mut out = Vec::with_capacity(1 << 20);
            for n in 0..EACH {
                if n % 2 == 0 {
                    out.extend_from_slice(format!("<134>Oct 11 22:14:15 host{c} app[1234]: user login failed from 10.0.0.{} port 22 sequence {n}\n", n % 250).as_bytes());
                } else {
                    let m = format!("<134>1 2024-10-11T22:14:15.003Z host{c} app 1234 ID47 [origin ip=\"10.0.0.1\"] user login failed sequence {n}");
                    out.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
                }
                if out.len() > 1 << 20 {
                    conn.write_all(&out).await.unwrap();
                    out.clear();
                }
            }
            conn.write_all(&out).await.unwrap();
        }));
    }
    let n = consumer.await.unwrap();
    let took = started.elapsed();
    println!(
        "{n} messages in {took:.2?}: {:.0} messages/s",
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(n, CONNECTIONS * EACH);
    for s in senders {
        s.await.unwrap();
    }
    server.shutdown().await;
}
