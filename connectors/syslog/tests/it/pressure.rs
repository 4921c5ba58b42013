//! Back-pressure (a full queue: UDP drops and counts, TCP stops reading) and shutdown (nothing
//! accepted on TCP is lost).

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use vigie_syslog::{Batcher, DropReason, SyslogConfig, Transport};

use crate::{config, eventually, start, take};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_udp_and_holds_tcp_back_until_the_consumer_reads() {
    const CAPACITY: usize = 4;
    let (server, mut rx) = start(&SyslogConfig {
        queue_capacity: CAPACITY,
        ..config()
    })
    .await;

    // UDP: the queue takes 4, the other 46 are dropped and counted.
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for n in 0..50 {
        udp.send_to(
            format!("<13>udp {n}").as_bytes(),
            server.udp_addr().unwrap(),
        )
        .await
        .unwrap();
        // Paced so that the kernel's socket buffer is not what drops them.
        if n % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eventually("50 datagrams received", || {
        server.stats().received(Transport::Udp) == 50
    })
    .await;
    assert_eq!(
        server
            .stats()
            .dropped(Transport::Udp, DropReason::QueueFull),
        46
    );
    assert_eq!(rx.len(), CAPACITY);

    // TCP: 16 MB of messages. The reader waits for room, so the sender is held back once the
    // socket buffers are full.
    const MESSAGES: usize = 16_000;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    let mut conn = socket.connect(server.tcp_addr().unwrap()).await.unwrap();
    let writer = tokio::spawn(async move {
        let filler = "x".repeat(1000);
        let mut out = Vec::with_capacity(64 * 1024);
        for n in 0..MESSAGES {
            out.extend_from_slice(format!("<13>tcp {n:05} {filler}\n").as_bytes());
            if out.len() > 60 * 1024 {
                conn.write_all(&out).await.unwrap();
                out.clear();
            }
        }
        conn.write_all(&out).await.unwrap();
        conn.shutdown().await.unwrap();
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!writer.is_finished(), "the sender is held back");
    assert_eq!(rx.len(), CAPACITY, "the queue is full, not overfull");
    assert_eq!(
        server
            .stats()
            .dropped(Transport::Tcp, DropReason::QueueFull),
        0
    );

    // The consumer reads: every TCP message arrives, in order.
    let got = take(&mut rx, CAPACITY + MESSAGES).await;
    writer.await.unwrap();
    assert!(
        got[..CAPACITY]
            .iter()
            .all(|m| m.message.starts_with("udp "))
    );
    for (n, m) in got[CAPACITY..].iter().enumerate() {
        assert!(
            m.message.starts_with(&format!("tcp {n:05} ")),
            "message {n}: {}",
            &m.message[..12]
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_every_tcp_message_already_sent() {
    const MESSAGES: usize = 2000;
    let (server, rx) = start(&SyslogConfig {
        queue_capacity: 16,
        ..config()
    })
    .await;
    let to = server.tcp_addr().unwrap();
    let stats = server.stats_handle();

    // Sent, flushed, connection left open; the queue is small and nobody reads yet.
    let mut conn = TcpStream::connect(to).await.unwrap();
    let mut out = Vec::new();
    for n in 0..MESSAGES {
        out.extend_from_slice(format!("<13>Oct 11 22:14:15 h app: kept {n}\n").as_bytes());
    }
    out.extend_from_slice(b"<13>Oct 11 22:14:15 h app: partial, never ended");
    conn.write_all(&out).await.unwrap();
    conn.flush().await.unwrap();

    // The hub's consumer, in batches, until the queue says it is over.
    let consumer = tokio::spawn(async move {
        let mut batches = Batcher::new(rx, 500, Duration::from_millis(20));
        let mut all = Vec::new();
        while let Some(batch) = batches.next_batch().await {
            all.extend(batch);
        }
        all
    });
    server.shutdown().await;
    let all = tokio::time::timeout(Duration::from_secs(20), consumer)
        .await
        .expect("the queue ends after the shutdown")
        .unwrap();
    assert_eq!(all.len(), MESSAGES);
    for (n, m) in all.iter().enumerate() {
        assert_eq!(m.message, format!("kept {n}"));
    }
    eventually("the partial message counted as incomplete", || {
        stats.dropped(Transport::Tcp, DropReason::Incomplete) == 1
    })
    .await;
    // No more listening.
    assert!(TcpStream::connect(to).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_never_pauses_does_not_hold_the_shutdown() {
    let (server, rx) = start(&config()).await;
    let mut conn = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    let flood = tokio::spawn(async move {
        let line = b"<13>Oct 11 22:14:15 h app: flood\n".repeat(100);
        // Bounded: stops by itself after 30 s at most, or as soon as the receiver closes.
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < until {
            if conn.write_all(&line).await.is_err() {
                break;
            }
        }
    });
    let consumer = tokio::spawn(async move {
        let mut batches = Batcher::new(rx, 500, Duration::from_millis(20));
        let mut n = 0;
        while let Some(batch) = batches.next_batch().await {
            n += batch.len();
        }
        n
    });
    eventually("the flood is being received", || {
        server.stats().received(Transport::Tcp) > 1000
    })
    .await;
    let started = tokio::time::Instant::now();
    server.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(consumer.await.unwrap() > 1000);
    flood.abort();
}
