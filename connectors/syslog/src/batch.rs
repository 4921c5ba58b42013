//! Draining the queue in batches: the store writes many messages per transaction, so the consumer
//! takes up to `max_size` messages at once, waiting at most `max_wait` after the first one for the
//! batch to fill (a quiet period is not held up, a busy one is written in large batches).

use std::time::Duration;

use tokio::time::Instant;

use crate::listen::SyslogReceiver;
use crate::parse::SyslogMessage;

/// Reads the queue in batches.
#[derive(Debug)]
pub struct Batcher {
    rx: SyslogReceiver,
    max_size: usize,
    max_wait: Duration,
}

impl Batcher {
    /// The hub's defaults: 500 messages or 200 ms.
    pub const DEFAULT_SIZE: usize = 500;
    pub const DEFAULT_WAIT: Duration = Duration::from_millis(200);

    pub fn new(rx: SyslogReceiver, max_size: usize, max_wait: Duration) -> Batcher {
        Batcher {
            rx,
            max_size: max_size.max(1),
            max_wait,
        }
    }

    /// The next batch: waits for a first message, then returns when `max_size` messages are
    /// there or `max_wait` has passed since the first one, whichever comes first. `None` once
    /// the receiver has stopped and everything was taken.
    pub async fn next_batch(&mut self) -> Option<Vec<SyslogMessage>> {
        let mut batch = Vec::with_capacity(self.max_size.min(4096));
        if self.rx.recv_many(&mut batch, self.max_size).await == 0 {
            return None;
        }
        let deadline = Instant::now() + self.max_wait;
        while batch.len() < self.max_size {
            let room = self.max_size - batch.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Some(batch)
    }

    /// Gives the receiver back.
    pub fn into_inner(self) -> SyslogReceiver {
        self.rx
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::net::SocketAddr;

    use chrono::Utc;
    use tokio::sync::mpsc;

    use super::*;
    use crate::parse::{Origin, ParseOptions, Transport, parse};

    fn msg(n: usize) -> SyslogMessage {
        let sender: SocketAddr = "127.0.0.1:1".parse().unwrap();
        parse(
            format!("<13>message {n}").as_bytes(),
            false,
            Origin {
                sender,
                transport: Transport::Udp,
                received_at: Utc::now(),
            },
            &ParseOptions::default(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn batches_by_size_then_by_time_then_ends() {
        let (tx, rx) = mpsc::channel(2000);
        let mut batcher = Batcher::new(rx, 500, Duration::from_millis(200));
        for n in 0..1200 {
            tx.send(msg(n)).await.unwrap();
        }
        let sizes = [
            batcher.next_batch().await.unwrap().len(),
            batcher.next_batch().await.unwrap().len(),
        ];
        assert_eq!(sizes, [500, 500]);

        // 200 left: the batch waits for more until 200 ms after its first message.
        let started = Instant::now();
        let sender = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.send(msg(1200)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            sender.send(msg(1201)).await.unwrap();
        });
        let batch = batcher.next_batch().await.unwrap();
        assert_eq!(batch.len(), 201, "the one sent 50 ms later joins the batch");
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(batch[200].message, "message 1200");

        let batch = batcher.next_batch().await.unwrap();
        assert_eq!(batch.len(), 1);
        drop(tx);
        assert!(batcher.next_batch().await.is_none());
    }
}
