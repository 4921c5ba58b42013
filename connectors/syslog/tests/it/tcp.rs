//! TCP: both framings, many senders, the connection limit, idle and broken connections.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use vigie_syslog::{ConnectionError, DropReason, Protocol, SyslogConfig, Transport};

use crate::{assert_quiet, config, eventually, start, take};

#[tokio::test]
async fn both_framings_on_one_connection_and_a_last_line_without_newline() {
    let (server, mut rx) = start(&config()).await;
    let to = server.tcp_addr().unwrap();

    let mut a = TcpStream::connect(to).await.unwrap();
    let counted = "<165>1 2003-10-11T22:14:15.003Z host1 app - - - octet\ncounted";
    let stream = format!(
        "<34>Oct 11 22:14:15 host1 su: newline framed\n{} {counted}<13>crlf framed\r\n\0<13>nul framed\0",
        counted.len()
    );
    // Written in small pieces: frames straddle the reads.
    for piece in stream.as_bytes().chunks(7) {
        a.write_all(piece).await.unwrap();
        a.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got = take(&mut rx, 4).await;
    let messages: Vec<&str> = got.iter().map(|m| m.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "newline framed",
            "octet counted",
            "crlf framed",
            "nul framed"
        ],
        "the LF inside the octet-counted message became a space"
    );
    assert_eq!(got[1].protocol, Protocol::Rfc5424);
    assert!(got.iter().all(|m| m.transport == Transport::Tcp));
    assert_eq!(got[0].sender, a.local_addr().unwrap());

    let mut b = TcpStream::connect(to).await.unwrap();
    b.write_all(
        b"<13>Oct 11 22:14:15 host2 app: first\n<13>Oct 11 22:14:15 host2 app: last, no newline",
    )
    .await
    .unwrap();
    b.shutdown().await.unwrap();
    let got = take(&mut rx, 2).await;
    assert_eq!(got[1].message, "last, no newline");
    assert_eq!(got[1].host, "host2");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_senders_lose_nothing() {
    const SENDERS: usize = 50;
    const EACH: usize = 200;
    let (server, mut rx) = start(&SyslogConfig {
        queue_capacity: 256,
        ..config()
    })
    .await;
    let to = server.tcp_addr().unwrap();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        senders.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(to).await.unwrap();
            let mut out = Vec::new();
            for n in 0..EACH {
                // Half the senders count octets, half end lines.
                let msg = format!("<14>1 2024-05-01T10:00:00Z sender{s} app - - - seq {n}");
                if s % 2 == 0 {
                    out.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
                } else {
                    out.extend_from_slice(msg.as_bytes());
                    out.push(b'\n');
                }
            }
            for chunk in out.chunks(1500) {
                conn.write_all(chunk).await.unwrap();
            }
            conn.shutdown().await.unwrap();
        }));
    }
    let got = take(&mut rx, SENDERS * EACH).await;
    for s in senders {
        s.await.unwrap();
    }
    let mut per_host: HashMap<String, Vec<usize>> = HashMap::new();
    for m in &got {
        let n: usize = m.message.strip_prefix("seq ").unwrap().parse().unwrap();
        per_host.entry(m.host.clone()).or_default().push(n);
    }
    assert_eq!(per_host.len(), SENDERS);
    for (host, seqs) in per_host {
        assert_eq!(seqs, (0..EACH).collect::<Vec<_>>(), "{host}: all, in order");
    }
    assert_quiet(&mut rx, Duration::from_millis(100)).await;
    assert_eq!(
        server.stats().received(Transport::Tcp),
        (SENDERS * EACH) as u64
    );
    eventually("every connection closed", || {
        server.stats().connections(Transport::Tcp) == 0
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_and_counted() {
    let (server, mut rx) = start(&SyslogConfig {
        max_connections: 2,
        ..config()
    })
    .await;
    let to = server.tcp_addr().unwrap();
    let mut a = TcpStream::connect(to).await.unwrap();
    let mut b = TcpStream::connect(to).await.unwrap();
    eventually("two connections open", || {
        server.stats().connections(Transport::Tcp) == 2
    })
    .await;

    let mut c = TcpStream::connect(to).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the third connection is closed by the receiver: {read:?}"
    );
    assert_eq!(
        server
            .stats()
            .dropped(Transport::Tcp, DropReason::ConnectionLimit),
        1
    );

    // The first two still work; once one closes, a new one is accepted.
    a.write_all(b"<13>from a\n").await.unwrap();
    b.write_all(b"<13>from b\n").await.unwrap();
    let mut got: Vec<String> = take(&mut rx, 2)
        .await
        .into_iter()
        .map(|m| m.message)
        .collect();
    got.sort();
    assert_eq!(got, ["from a", "from b"]);
    drop(a);
    eventually("a slot is free", || {
        server.stats().connections(Transport::Tcp) == 1
    })
    .await;
    let mut d = TcpStream::connect(to).await.unwrap();
    d.write_all(b"<13>from d\n").await.unwrap();
    assert_eq!(take(&mut rx, 1).await[0].message, "from d");
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_time_out() {
    let (server, mut rx) = start(&SyslogConfig {
        idle_timeout: "300ms".into(),
        ..config()
    })
    .await;
    let mut silent = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    let mut partial = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    partial.write_all(b"<13>never finished").await.unwrap();
    let mut buf = [0u8; 16];
    for conn in [&mut silent, &mut partial] {
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed: {read:?}");
    }
    let stats = server.stats();
    assert_eq!(
        stats.connection_errors(Transport::Tcp, ConnectionError::IdleTimeout),
        2
    );
    assert_eq!(stats.dropped(Transport::Tcp, DropReason::Incomplete), 1);
    assert_quiet(&mut rx, Duration::from_millis(50)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_octet_count_closes_the_connection_after_the_good_frames() {
    let (server, mut rx) = start(&config()).await;
    let mut conn = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    conn.write_all(b"<13>good one\n8 <13>good0 <13>after the bad count\n")
        .await
        .unwrap();
    let got = take(&mut rx, 2).await;
    assert_eq!(got[0].message, "good one");
    assert_eq!(got[1].message, "good");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed: {read:?}");
    assert_quiet(&mut rx, Duration::from_millis(50)).await;
    let stats = server.stats();
    assert_eq!(stats.dropped(Transport::Tcp, DropReason::BadFrame), 1);
    assert_eq!(
        stats.connection_errors(Transport::Tcp, ConnectionError::BadFrame),
        1
    );

    // The receiver itself goes on.
    let mut next = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    next.write_all(b"<13>still here\n").await.unwrap();
    assert_eq!(take(&mut rx, 1).await[0].message, "still here");
    server.shutdown().await;
}
