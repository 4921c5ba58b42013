//! The live feed: every change of an alert, as server-sent events to the boards.
//!
//! One task per hub turns the pipeline's events (and the actions') into serialized alerts once,
//! and broadcasts them to every connected client. On PostgreSQL, hub processes tell each other
//! with `NOTIFY vigie_alerts` (payload: the sender's id and the alert ids), so an alert ingested
//! by one process reaches the boards connected to another.
//!
//! Every event's id is `<updated_at in µs>-<alert id>`. A client that reconnects sends it back
//! (`Last-Event-ID`); it gets every alert changed since, from a few seconds earlier (commits of
//! several writers do not land in the order of their times; clients keep the newest version of
//! each alert, so a repeat is harmless), then the live events. Nothing is missed.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use tokio::sync::{broadcast, mpsc};
use vigie_core::on_pool;
use vigie_core::store::{Marks, Store, StoreError};

use crate::board::{BoardAlert, Count};
use crate::model::{ALERT_COLUMNS, Alert, AlertEvent};
use crate::pipeline::Pipeline;

const CHANNEL: &str = "vigie_alerts";
/// How far back a resume reaches before the last event seen.
const RESUME_MARGIN: chrono::Duration = chrono::Duration::seconds(5);
/// The most alerts a resume sends before the live events (beyond, the client reloads).
const RESUME_MAX: i64 = 2000;
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One alert as the stream sends it.
#[derive(Debug)]
pub struct FeedItem {
    pub alert_id: i64,
    pub event_id: String,
    pub json: String,
}

impl FeedItem {
    fn of(alert: &Alert) -> FeedItem {
        FeedItem {
            alert_id: alert.id,
            event_id: event_id(alert.updated_at, alert.id),
            json: serde_json::to_string(alert).unwrap_or_else(|_| "{}".into()),
        }
    }

    /// The SSE frame of the item.
    pub fn frame(&self) -> Bytes {
        Bytes::from(format!(
            "id: {}\nevent: alert\ndata: {}\n\n",
            self.event_id, self.json
        ))
    }
}

pub fn event_id(updated_at: DateTime<Utc>, id: i64) -> String {
    format!("{}-{id}", updated_at.timestamp_micros())
}

/// The time of an event id, if it is one.
pub fn parse_event_id(text: &str) -> Option<DateTime<Utc>> {
    let (micros, id) = text.trim().split_once('-')?;
    id.parse::<i64>().ok()?;
    DateTime::from_timestamp_micros(micros.parse().ok()?)
}

/// A value read from the store as of a change generation.
type Cached<T> = Arc<tokio::sync::Mutex<Option<(u64, T)>>>;

/// The hub's live feed.
#[derive(Clone)]
pub struct Feed {
    items: broadcast::Sender<Arc<FeedItem>>,
    /// Local changes to relay (actions, deferrals coming back).
    local: mpsc::UnboundedSender<Vec<i64>>,
    /// Bumped at every change of any alert (of any hub process).
    generation: Arc<AtomicU64>,
    /// The board's counts as of a generation: read again only when something changed, however
    /// many boards ask.
    /// (An async lock, held while reading: when the cache is stale, one request reads the store
    /// and the others wait for its answer rather than all asking at once.)
    counts: Cached<Vec<Count>>,
    /// The board's unfiltered first page, likewise.
    first_page: Cached<Arc<Vec<BoardAlert>>>,
    /// Set when the hub stops: every stream ends, so that the server's graceful stop does not
    /// wait for connections that never finish on their own.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Feed {
    /// Starts the feed's task; it ends when the pipeline's event channel closes.
    pub fn start(store: Store, pipeline: &Pipeline) -> (Feed, tokio::task::JoinHandle<()>) {
        let (items, _) = broadcast::channel(4096);
        let (local, local_rx) = mpsc::unbounded_channel();
        let events = pipeline.subscribe();
        let generation = pipeline.generation();
        let feed = Feed {
            items: items.clone(),
            local,
            generation: generation.clone(),
            counts: Arc::new(tokio::sync::Mutex::new(None)),
            first_page: Arc::new(tokio::sync::Mutex::new(None)),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        };
        let task = tokio::spawn(run(store, events, local_rx, items, generation));
        (feed, task)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.items.subscribe()
    }

    /// Ends every open stream (the hub is stopping); clients reconnect to another process or
    /// when this one is back, resuming from their last event.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Tells every board (of every hub process) that these alerts changed.
    pub fn changed(&self, ids: Vec<i64>) {
        if !ids.is_empty() {
            // Now, not when the task gets to it: the caller's next read must not hit a cache.
            self.generation.fetch_add(1, Ordering::Relaxed);
            let _ = self.local.send(ids);
        }
    }

    pub fn clients(&self) -> usize {
        self.items.receiver_count()
    }

    /// The first page of the unfiltered board (what every operator's screen shows), cached until
    /// an alert changes.
    pub async fn first_page(&self, store: &Store) -> Result<Arc<Vec<BoardAlert>>, StoreError> {
        let mut cached = self.first_page.lock().await;
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some((g, page)) = cached.as_ref()
            && *g == generation
        {
            return Ok(page.clone());
        }
        let filter = crate::board::BoardFilter {
            limit: crate::board::PAGE,
            ..Default::default()
        };
        let page = Arc::new(crate::board::page(store, &filter).await?);
        *cached = Some((generation, page.clone()));
        Ok(page)
    }

    /// Open alerts per domain and level, cached until an alert changes.
    pub async fn counts(&self, store: &Store) -> Result<Vec<Count>, StoreError> {
        let mut cached = self.counts.lock().await;
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some((g, counts)) = cached.as_ref()
            && *g == generation
        {
            return Ok(counts.clone());
        }
        let counts = crate::board::counts(store).await?;
        *cached = Some((generation, counts.clone()));
        Ok(counts)
    }
}

/// This process's name on the notification channel, so it ignores its own notifications.
fn origin() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        vigie_core::time::now().timestamp_micros()
    )
}

async fn run(
    store: Store,
    mut events: broadcast::Receiver<AlertEvent>,
    mut local: mpsc::UnboundedReceiver<Vec<i64>>,
    items: broadcast::Sender<Arc<FeedItem>>,
    generation: Arc<AtomicU64>,
) {
    let me = origin();
    let mut listener = match &store {
        Store::Postgres(pool) => match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::error!(error = %e, "Cannot listen for other hub processes' alerts.");
                    None
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for other hub processes' alerts.");
                None
            }
        },
        Store::Sqlite(..) => None,
    };
    loop {
        let mut ids: BTreeSet<i64> = BTreeSet::new();
        let mut mine = true;
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => { ids.insert(e.alert_id); }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "The live feed fell behind the pipeline; boards resync.");
                    metrics::counter!("vigie_live_lagged_total").increment(n);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(batch) = local.recv() => { ids.extend(batch); }
            notification = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await,
                    None => std::future::pending().await,
                }
            } => match notification {
                Ok(n) => {
                    if let Some((from, list)) = n.payload().split_once(':')
                        && from != me
                    {
                        mine = false;
                        ids.extend(list.split(',').filter_map(|i| i.parse::<i64>().ok()));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "The notification listener failed; it reconnects.");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        }
        if mine {
            // Take what else is waiting, so a burst costs one query.
            while ids.len() < 500 {
                match events.try_recv() {
                    Ok(e) => {
                        ids.insert(e.alert_id);
                    }
                    Err(_) => break,
                }
            }
            while let Ok(batch) = local.try_recv() {
                ids.extend(batch);
            }
        }
        if ids.is_empty() {
            continue;
        }
        let ids: Vec<i64> = ids.into_iter().collect();
        generation.fetch_add(1, Ordering::Relaxed);
        if mine {
            // Before anyone sees them: alerts a maintenance window covers stay off the boards.
            if let Err(e) = crate::maintenance::refresh(&store, Some(&ids)).await {
                tracing::warn!(error = %e, "Cannot apply the maintenance windows to new alerts.");
            }
        }
        if mine && let Store::Postgres(pool) = &store {
            for chunk in ids.chunks(500) {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let payload = format!("{me}:{}", list.join(","));
                if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(pool)
                    .await
                {
                    tracing::warn!(error = %e, "Cannot tell the other hub processes about new alerts.");
                }
            }
        }
        if items.receiver_count() == 0 {
            continue;
        }
        match load(&store, &ids).await {
            Ok(alerts) => {
                for alert in &alerts {
                    let _ = items.send(Arc::new(FeedItem::of(alert)));
                }
                metrics::counter!("vigie_live_events_total").increment(alerts.len() as u64);
            }
            Err(e) => tracing::warn!(error = %e, "Cannot read the alerts to stream."),
        }
    }
}

async fn load(store: &Store, ids: &[i64]) -> Result<Vec<Alert>, StoreError> {
    let mut marks = Marks::new(store.backend());
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE id IN ({}) ORDER BY updated_at, id",
        marks.list(ids.len())
    );
    Ok(on_pool!(store, pool => {
        let mut q = sqlx::query_as::<_, Alert>(AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        q.fetch_all(pool).await
    })?)
}

/// The alerts changed since a client's last event (see the module's doc).
pub async fn since(store: &Store, last: DateTime<Utc>) -> Result<Vec<FeedItem>, StoreError> {
    let from = last - RESUME_MARGIN;
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE updated_at >= $1 ORDER BY updated_at, id LIMIT {RESUME_MAX}"
    );
    let alerts = on_pool!(store, pool => sqlx::query_as::<_, Alert>(AssertSqlSafe(sql))
        .bind(from)
        .fetch_all(pool)
        .await)?;
    Ok(alerts.iter().map(FeedItem::of).collect())
}

/// An SSE body: the resume backlog, then live items and keep-alives, until the client leaves.
pub fn stream(
    feed: &Feed,
    backlog: Vec<FeedItem>,
) -> tokio_stream::wrappers::ReceiverStream<Result<Bytes, Infallible>> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut items = feed.subscribe();
    let mut closing = feed.closing.subscribe();
    tokio::spawn(async move {
        if *closing.borrow_and_update() {
            return;
        }
        // Tells the browser how long to wait before reconnecting.
        if tx
            .send(Ok(Bytes::from_static(b"retry: 2000\n\n")))
            .await
            .is_err()
        {
            return;
        }
        for item in backlog {
            if tx.send(Ok(item.frame())).await.is_err() {
                return;
            }
        }
        let mut tick = tokio::time::interval(KEEP_ALIVE);
        tick.tick().await;
        loop {
            let frame = tokio::select! {
                item = items.recv() => match item {
                    Ok(item) => item.frame(),
                    Err(broadcast::error::RecvError::Lagged(_)) => Bytes::from_static(b"event: resync\ndata: {}\n\n"),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => Bytes::from_static(b": keep-alive\n\n"),
                _ = closing.changed() => return,
            };
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_to_their_time() {
        let t = vigie_core::time::now();
        let id = event_id(t, 42);
        assert_eq!(parse_event_id(&id), Some(t));
        assert_eq!(parse_event_id("nonsense"), None);
        assert_eq!(parse_event_id("12-x"), None);
    }
}
