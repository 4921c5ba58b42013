//! The delivery worker: claims due messages with a lease (committed before anything is sent),
//! sends them in parallel, and records each outcome: `sent`, `pending` again after a back-off,
//! or `dead`. A worker that dies leaves its claimed rows in `sending`; once their lease expires
//! any worker claims them again, so nothing is dropped. A message whose send succeeded but whose
//! `sent` mark was not committed is sent again with the same Message-ID: that window (from the
//! relay's acceptance to the commit, milliseconds) is the only way to get a duplicate, and the
//! receiver can recognise it (docs/notify.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use vigie_core::on_tx;
use vigie_core::store::{Store, StoreError};

use crate::channels::{Failure, Hook, Mailer, send_sms, send_webhook};
use crate::settings::NotifySettings;

/// Starts the delivery worker; it stops (after finishing the sends under way) when `stop`
/// turns true. Aborting the handle instead is a crash: claimed rows wait for their lease.
pub fn spawn_worker(
    store: Store,
    settings: NotifySettings,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let worker = Worker::new(store, settings);
        worker.run(stop).await;
    })
}

/// One claimed message.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    created_at: DateTime<Utc>,
    channel: String,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: Option<String>,
    kind: String,
    attempts: i32,
}

/// What became of one send.
#[derive(Debug)]
enum Outcome {
    Sent {
        id: i64,
        message_id: String,
    },
    Retry {
        id: i64,
        at: DateTime<Utc>,
        error: String,
    },
    Dead {
        id: i64,
        error: String,
    },
}

struct Shared {
    settings: NotifySettings,
    mailer: Result<Mailer, String>,
    mail_slots: Semaphore,
    http: reqwest::Client,
    /// The right-hand side of Message-IDs (the From domain, else the host name).
    id_host: String,
}

struct Worker {
    store: Store,
    shared: Arc<Shared>,
    name: String,
}

impl Worker {
    fn new(store: Store, settings: NotifySettings) -> Worker {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mailer = match &settings.smtp {
            Some(smtp) => Mailer::new(
                smtp,
                settings.worker.smtp_connections,
                settings.worker.send_timeout,
            ),
            None => Err("no SMTP relay is configured ([smtp] url)".to_owned()),
        };
        if let (Some(_), Err(e)) = (&settings.smtp, &mailer) {
            tracing::error!(error = %e, "The SMTP relay cannot be used; mails will be dead-lettered.");
        }
        let id_host = match &mailer {
            Ok(m) => m.id_host.clone(),
            Err(_) => "vigie.invalid".to_owned(),
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("vigie-notify/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "Cannot build the HTTP client; using the default one.");
                reqwest::Client::new()
            });
        let mail_slots = Semaphore::new(settings.worker.smtp_connections.max(1) as usize);
        let name = format!(
            "{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_micros()
        );
        Worker {
            store,
            shared: Arc::new(Shared {
                settings,
                mailer,
                mail_slots,
                http,
                id_host,
            }),
            name,
        }
    }

    async fn run(self, stop: watch::Receiver<bool>) {
        let (done, outcomes) = mpsc::unbounded_channel();
        // Both loops live in this one task: aborting it aborts every send (the JoinSet) too.
        tokio::join!(self.claim_loop(done, stop), self.mark_loop(outcomes));
        tracing::info!(worker = %self.name, "Notification worker stopped.");
    }

    async fn claim_loop(
        &self,
        done: mpsc::UnboundedSender<Outcome>,
        mut stop: watch::Receiver<bool>,
    ) {
        let tuning = self.shared.settings.worker;
        let batch = tuning.batch.max(1) as usize;
        // Claimed rows wait in memory for a sending slot: up to a batch beyond the slots, so
        // that the outbox is read in batches rather than row by row as slots free up.
        let most = tuning.parallel.max(1) + batch;
        let slots = Arc::new(Semaphore::new(tuning.parallel.max(1)));
        let finished = Arc::new(tokio::sync::Notify::new());
        let mut sends = JoinSet::new();
        let mut store_failures = 0u32;
        loop {
            if *stop.borrow() {
                break;
            }
            while sends.try_join_next().is_some() {}
            let free = most.saturating_sub(sends.len()).min(batch);
            let mut full = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(rows) => {
                        store_failures = 0;
                        full = rows.len() == free;
                        for row in rows {
                            let shared = self.shared.clone();
                            let done = done.clone();
                            let slots = slots.clone();
                            let finished = finished.clone();
                            sends.spawn(async move {
                                let Ok(_slot) = slots.acquire().await else {
                                    return;
                                };
                                let outcome = deliver(&shared, row).await;
                                let _ = done.send(outcome);
                                finished.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        store_failures += 1;
                        tracing::warn!(error = %e, "Cannot claim notifications; trying again.");
                    }
                }
            }
            if full {
                // A full batch: there may be more at once.
                continue;
            }
            if free == 0 {
                // As many rows in hand as allowed: wait for some to finish.
                tokio::select! {
                    _ = finished.notified() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let wait = if store_failures > 0 {
                Duration::from_secs(1 << store_failures.min(5))
            } else {
                tuning.poll_interval
            };
            tokio::select! {
                _ = crate::doorbell().notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        // Finish the sends under way so that their outcomes are recorded.
        while sends.join_next().await.is_some() {}
    }

    /// Claims up to `limit` due messages (pending and due, or claimed under an expired lease)
    /// and commits the claim before anything is sent.
    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        let now = vigie_core::time::now();
        let lease = now
            + chrono::Duration::from_std(self.shared.settings.worker.lease)
                .unwrap_or(chrono::Duration::minutes(2));
        let mut tx = self.store.begin().await?;
        // The condition is repeated outside the sub-select so that on PostgreSQL a row another
        // worker claimed meanwhile is re-checked and skipped, not claimed twice.
        let rows = on_tx!(&mut tx, conn => sqlx::query_as::<_, Claimed>(
            "UPDATE outbox SET state = 'sending', lease_until = $1, claimed_by = $2,
                               attempts = attempts + 1
             WHERE id IN (SELECT id FROM outbox
                          WHERE (state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $3))
                             OR (state = 'sending' AND lease_until <= $3)
                          ORDER BY id LIMIT $4)
               AND ((state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $3))
                    OR (state = 'sending' AND lease_until <= $3))
             RETURNING id, created_at, channel, recipient, subject, body_text, body_html, kind,
                       attempts",
        )
        .bind(lease)
        .bind(&self.name)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(conn)
        .await)?;
        tx.commit().await?;
        let mut rows = rows;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records outcomes as they come, many per transaction.
    async fn mark_loop(&self, mut outcomes: mpsc::UnboundedReceiver<Outcome>) {
        let mut batch = Vec::new();
        while let Some(first) = outcomes.recv().await {
            batch.push(first);
            while batch.len() < 500 {
                match outcomes.try_recv() {
                    Ok(o) => batch.push(o),
                    Err(_) => break,
                }
            }
            let mut tries = 0u32;
            loop {
                match self.mark(&batch).await {
                    Ok(()) => break,
                    Err(e) if tries < 6 => {
                        tries += 1;
                        tracing::warn!(error = %e, "Cannot record notification outcomes; trying again.");
                        tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                    }
                    Err(e) => {
                        // Their leases will expire and they will be sent again (same Message-ID).
                        tracing::error!(error = %e, count = batch.len(),
                            "Notification outcomes were not recorded.");
                        break;
                    }
                }
            }
            batch.clear();
        }
    }

    async fn mark(&self, batch: &[Outcome]) -> Result<(), StoreError> {
        let now = vigie_core::time::now();
        let mut tx = self.store.begin().await?;
        for outcome in batch {
            match outcome {
                Outcome::Sent { id, message_id } => {
                    on_tx!(&mut tx, conn => sqlx::query(
                        "UPDATE outbox SET state = 'sent', sent_at = $1, lease_until = NULL,
                                           message_id = $2, last_error = NULL
                         WHERE id = $3 AND state <> 'sent'",
                    )
                    .bind(now)
                    .bind(message_id)
                    .bind(id)
                    .execute(conn)
                    .await
                    .map(drop))?;
                }
                Outcome::Retry { id, at, error } => {
                    on_tx!(&mut tx, conn => sqlx::query(
                        "UPDATE outbox SET state = 'pending', next_attempt_at = $1,
                                           lease_until = NULL, last_error = $2
                         WHERE id = $3 AND state = 'sending' AND claimed_by = $4",
                    )
                    .bind(at)
                    .bind(error)
                    .bind(id)
                    .bind(&self.name)
                    .execute(conn)
                    .await
                    .map(drop))?;
                }
                Outcome::Dead { id, error } => {
                    on_tx!(&mut tx, conn => sqlx::query(
                        "UPDATE outbox SET state = 'dead', dead_at = $1, lease_until = NULL,
                                           last_error = $2
                         WHERE id = $3 AND state = 'sending' AND claimed_by = $4",
                    )
                    .bind(now)
                    .bind(error)
                    .bind(id)
                    .bind(&self.name)
                    .execute(conn)
                    .await
                    .map(drop))?;
                }
            }
        }
        tx.commit().await?;
        for outcome in batch {
            match outcome {
                Outcome::Sent { .. } => metrics::counter!("vigie_notify_sent_total").increment(1),
                Outcome::Retry { id, error, .. } => {
                    metrics::counter!("vigie_notify_retried_total").increment(1);
                    tracing::info!(id, error = %error, "Notification will be retried.");
                }
                Outcome::Dead { id, error } => {
                    metrics::counter!("vigie_notify_dead_total").increment(1);
                    tracing::warn!(id, error = %error, "Notification dead-lettered.");
                }
            }
        }
        Ok(())
    }
}

/// The Message-ID every attempt of outbox row `id` carries.
pub fn message_id(id: i64, created_at: DateTime<Utc>, host: &str) -> String {
    format!("<outbox-{id}.{}@{host}>", created_at.timestamp_micros())
}

/// Sends one claimed message and says what to record.
async fn deliver(shared: &Shared, row: Claimed) -> Outcome {
    let message_id = message_id(row.id, row.created_at, &shared.id_host);
    let result = match row.channel.as_str() {
        "mail" => match &shared.mailer {
            Ok(mailer) => {
                let _slot = shared.mail_slots.acquire().await;
                mailer
                    .send(
                        &row.recipient,
                        &row.subject,
                        &row.body_text,
                        row.body_html.as_deref(),
                        &message_id,
                    )
                    .await
            }
            Err(e) => Err(Failure::permanent(e.clone())),
        },
        "sms" => match &shared.settings.sms {
            Some(gateway) => send_sms(&shared.http, gateway, &row.recipient, &row.body_text).await,
            None => Err(Failure::permanent("no SMS gateway is configured ([sms])")),
        },
        "webhook" => match shared
            .settings
            .webhooks
            .iter()
            .find(|w| w.name == row.recipient)
        {
            Some(webhook) => {
                let hook = Hook {
                    id: row.id,
                    kind: &row.kind,
                    subject: &row.subject,
                    text: &row.body_text,
                    message_id: &message_id,
                    created_at: row.created_at,
                };
                send_webhook(&shared.http, webhook, &hook).await
            }
            None => Err(Failure::permanent(format!(
                "no webhook named `{}` is configured ([[webhooks]])",
                row.recipient
            ))),
        },
        other => Err(Failure::permanent(format!("unknown channel `{other}`"))),
    };
    match result {
        Ok(()) => Outcome::Sent {
            id: row.id,
            message_id,
        },
        Err(f) => {
            let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
            let policy = shared.settings.retry;
            let mut error = f.error;
            error.truncate(error.floor_char_boundary(2000));
            if f.permanent || attempts >= policy.max_attempts {
                if !f.permanent {
                    error = format!("after {attempts} attempts: {error}");
                }
                Outcome::Dead { id: row.id, error }
            } else {
                let delay = chrono::Duration::from_std(policy.delay(attempts))
                    .unwrap_or(chrono::Duration::minutes(10));
                Outcome::Retry {
                    id: row.id,
                    at: vigie_core::time::now() + delay,
                    error,
                }
            }
        }
    }
}
