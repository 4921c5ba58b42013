//! Batch storage and retention.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use vigie_logs::filter::LogFilter;
use vigie_logs::repo;
use vigie_logs::retention::{Retention, purge};

use crate::{hub, message};

fn all() -> LogFilter {
    LogFilter {
        limit: 5000,
        ..LogFilter::default()
    }
}

#[tokio::test]
async fn a_batch_keeps_every_field_and_its_order() {
    let h = hub().await;
    let now = Utc::now();
    let mut truncated = message("<11>Oct 11 22:14:15 cut app: long", now);
    truncated.truncated = true;
    let batch = vec![
        message(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event"#,
            now,
        ),
        message(
            "<34>Oct 11 22:14:15 rtr1 su: 'su root' failed for lonvick",
            now,
        ),
        message("no syslog header at all", now),
        truncated,
    ];
    repo::insert_batch(&h.store, &batch).await.unwrap();
    let rows = repo::list(&h.store, &all()).await.unwrap();
    assert_eq!(rows.len(), 4);
    // Newest first: the batch's last message has the largest id.
    assert!(rows.windows(2).all(|w| w[0].id > w[1].id));
    let [cut, unparsed, bsd, ietf] = [&rows[0], &rows[1], &rows[2], &rows[3]];

    assert_eq!(ietf.host, "mymachine.example.com");
    assert_eq!((ietf.facility, ietf.severity), (Some(20), Some(5)));
    assert_eq!(ietf.facility_name, Some("local4"));
    assert_eq!(ietf.severity_name, Some("notice"));
    assert_eq!(ietf.app_name.as_deref(), Some("evntslog"));
    assert_eq!(ietf.proc_id.as_deref(), Some("1234"));
    assert_eq!(ietf.msg_id.as_deref(), Some("ID47"));
    assert_eq!(
        ietf.structured_data,
        Some(json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Application"}}))
    );
    assert_eq!(ietf.message, "An application event");
    assert_eq!(ietf.variant, "rfc5424");
    assert_eq!(
        ietf.timestamp.unwrap().to_rfc3339(),
        "2003-10-11T22:14:15.003+00:00"
    );
    assert_eq!(ietf.sender, "192.0.2.7:40000");
    assert_eq!(ietf.transport, "udp");
    assert_eq!(
        ietf.received_at,
        vigie_core::time::to_store_precision(now),
        "reception time kept to the microsecond"
    );
    assert!(ietf.raw.starts_with("<165>1 2003-10-11T22:14:15.003Z"));

    assert_eq!((bsd.host.as_str(), bsd.severity), ("rtr1", Some(2)));
    assert_eq!(bsd.variant, "rfc3164");
    assert_eq!(bsd.structured_data, None);
    assert_eq!(unparsed.variant, "unparsed");
    assert_eq!(unparsed.message, "no syslog header at all");
    assert_eq!(unparsed.host, "192.0.2.7", "no host: the sender's address");
    assert!(cut.truncated);
    assert!(!bsd.truncated);
}

#[tokio::test]
async fn large_batches_are_stored_whole_in_several_blocks() {
    let h = hub().await;
    let now = Utc::now();
    let batch: Vec<_> = (0..2500)
        .map(|n| {
            message(
                &format!("<13>Oct 11 22:14:15 h{} app: message {n}", n % 7),
                now,
            )
        })
        .collect();
    repo::insert_batch(&h.store, &batch).await.unwrap();
    assert_eq!(repo::count(&h.store).await.unwrap(), 2500);
    let newest = repo::list(&h.store, &LogFilter { limit: 1, ..all() })
        .await
        .unwrap();
    assert_eq!(newest[0].message, "message 2499");
    let (min, max) = repo::id_range(&h.store).await.unwrap().unwrap();
    assert_eq!(max - min + 1, 2500, "ids are dense");
    // Blocks of 1024, 1024 and 452, read across in order.
    assert_eq!(blocks(&h.store).await, 3);
    let listed = repo::list(&h.store, &all()).await.unwrap();
    let ids: Vec<i64> = listed.iter().map(|m| m.id).collect();
    assert_eq!(ids, (min..=max).rev().collect::<Vec<_>>());
    assert_eq!(listed[2499].message, "message 0");
    assert_eq!(listed[1476].message, "message 1023");
    assert_eq!(listed[1475].message, "message 1024");
    repo::insert_batch(&h.store, &[]).await.unwrap();
    assert_eq!(blocks(&h.store).await, 3);
}

fn retention() -> Retention {
    Retention {
        days: 0,
        max_rows: 0,
        max_bytes: 0,
        interval: Duration::from_secs(3600),
        chunk: 100,
        pause: Duration::from_millis(1),
    }
}

#[tokio::test]
async fn old_messages_are_purged_in_chunks() {
    let h = hub().await;
    let old = Utc::now() - chrono::Duration::days(31);
    let recent = Utc::now() - chrono::Duration::days(29);
    let mut batch: Vec<_> = (0..450)
        .map(|n| message(&format!("<13>Oct 11 22:14:15 h app: old {n}"), old))
        .collect();
    batch.extend(
        (0..30).map(|n| message(&format!("<13>Oct 11 22:14:15 h app: recent {n}"), recent)),
    );
    repo::insert_batch(&h.store, &batch).await.unwrap();

    // No limit at all: nothing goes.
    assert_eq!(purge(&h.store, &retention()).await.unwrap().by_age, 0);
    let purged = purge(
        &h.store,
        &Retention {
            days: 30,
            ..retention()
        },
    )
    .await
    .unwrap();
    assert_eq!((purged.by_age, purged.by_size), (450, 0));
    let left = repo::list(&h.store, &all()).await.unwrap();
    assert_eq!(left.len(), 30);
    assert!(left.iter().all(|m| m.message.starts_with("recent")));
    // Nothing more to do the next time.
    assert_eq!(
        purge(
            &h.store,
            &Retention {
                days: 30,
                ..retention()
            }
        )
        .await
        .unwrap()
        .by_age,
        0
    );
}

#[tokio::test]
async fn the_row_limit_keeps_the_newest() {
    let h = hub().await;
    let now = Utc::now();
    for round in 0..2 {
        let batch: Vec<_> = (0..500)
            .map(|n| {
                message(
                    &format!("<13>Oct 11 22:14:15 h app: m{}", round * 500 + n),
                    now,
                )
            })
            .collect();
        repo::insert_batch(&h.store, &batch).await.unwrap();
    }
    let purged = purge(
        &h.store,
        &Retention {
            max_rows: 300,
            ..retention()
        },
    )
    .await
    .unwrap();
    assert_eq!(purged.by_size, 700);
    assert_eq!(repo::count(&h.store).await.unwrap(), 300);
    let oldest = repo::list(&h.store, &all()).await.unwrap().pop().unwrap();
    assert_eq!(oldest.message, "m700");
}

#[tokio::test]
async fn the_size_limit_is_kept_approximately() {
    let h = hub().await;
    let now = Utc::now();
    let text = "x".repeat(900);
    let batch: Vec<_> = (0..1000)
        .map(|n| message(&format!("<13>Oct 11 22:14:15 h app: {n:04} {text}"), now))
        .collect();
    repo::insert_batch(&h.store, &batch).await.unwrap();
    let avg = repo::average_row_bytes(&h.store).await.unwrap().unwrap();
    // The line (~930 bytes; the message, its end, is written as where it starts) and the rest.
    assert!((950..1250).contains(&avg), "{avg}");
    // Room for about 200 rows.
    let purged = purge(
        &h.store,
        &Retention {
            max_bytes: 200 * avg as u64,
            ..retention()
        },
    )
    .await
    .unwrap();
    let left = repo::count(&h.store).await.unwrap();
    assert!((190..=210).contains(&left), "{left} rows left, {purged:?}");
    assert_eq!(purged.by_size as i64, 1000 - left);
    let newest = repo::list(&h.store, &LogFilter { limit: 1, ..all() })
        .await
        .unwrap();
    assert!(newest[0].message.starts_with("0999"));
}

#[test]
fn purges_are_counted_in_the_metrics() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(async {
        let h = hub().await;
        let old = Utc::now() - chrono::Duration::days(40);
        let now = Utc::now();
        let mut batch: Vec<_> = (0..250)
            .map(|n| message(&format!("<13>Oct 11 22:14:15 h app: old {n}"), old))
            .collect();
        batch
            .extend((0..100).map(|n| message(&format!("<13>Oct 11 22:14:15 h app: new {n}"), now)));
        repo::insert_batch(&h.store, &batch).await.unwrap();
        h
    });
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let purged = metrics::with_local_recorder(&recorder, || {
        rt.block_on(purge(
            &h.store,
            &Retention {
                days: 30,
                max_rows: 40,
                ..retention()
            },
        ))
    })
    .unwrap();
    assert_eq!((purged.by_age, purged.by_size), (250, 60));
    let text = handle.render();
    assert!(
        text.contains("vigie_syslog_purged_total{reason=\"age\"} 250"),
        "{text}"
    );
    assert!(
        text.contains("vigie_syslog_purged_total{reason=\"size\"} 60"),
        "{text}"
    );
    assert!(text.contains("vigie_syslog_stored_rows 40"), "{text}");
}

#[tokio::test]
async fn on_sqlite_the_messages_have_a_file_of_their_own_and_old_ones_move_into_it() {
    let h = hub().await;
    let now = Utc::now();
    // Stored in the hub's own table, as versions before the split did.
    let old: Vec<_> = (0..3)
        .map(|n| message(&format!("<13>Oct 11 22:14:15 rtr{n} app: before {n}"), now))
        .collect();
    repo::insert_batch(&h.store, &old).await.unwrap();
    let before = repo::list(&h.store, &all()).await.unwrap();

    let messages = vigie_logs::MessagesStore::open(&h.store).await.unwrap();
    match h.store.sqlite_file() {
        Some(hub_file) => {
            let own = messages.store().sqlite_file().expect("a SQLite file");
            assert_ne!(own, hub_file);
            assert_eq!(
                own.file_name().and_then(|f| f.to_str()),
                Some("vigie-syslog.db")
            );
            assert!(own.exists());
            // Moved whole, ids kept; the hub's table is left empty.
            let moved = repo::list(messages.store(), &all()).await.unwrap();
            assert_eq!(moved, before);
            // Their blocks were made again in the file: the host filter reads them.
            let rtr1 = LogFilter {
                host: Some("rtr1".into()),
                ..all()
            };
            let found = repo::list(messages.store(), &rtr1).await.unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].message, "before 1");
            assert_eq!(repo::count(&h.store).await.unwrap(), 0);
            // New messages follow the moved ones.
            repo::insert_batch(messages.store(), &[message("<13>rtr9 app: after", now)])
                .await
                .unwrap();
            let newest = repo::list(messages.store(), &all()).await.unwrap();
            assert_eq!(newest.len(), 4);
            assert!(newest[0].id > before[0].id);
            // Opening again (the next start) moves nothing and loses nothing.
            let again = vigie_logs::MessagesStore::open(&h.store).await.unwrap();
            assert_eq!(repo::count(again.store()).await.unwrap(), 4);
            // An older version run again writes into the emptied hub table, from id 1: those
            // ids are taken in the messages' file, so the rows get new ones, after the others.
            let late: Vec<_> = (0..2)
                .map(|n| message(&format!("<13>Oct 11 22:14:16 old{n} app: late {n}"), now))
                .collect();
            repo::insert_batch(&h.store, &late).await.unwrap();
            let third = vigie_logs::MessagesStore::open(&h.store).await.unwrap();
            let all_rows = repo::list(third.store(), &all()).await.unwrap();
            assert_eq!(all_rows.len(), 6);
            let old1 = LogFilter {
                host: Some("old1".into()),
                ..all()
            };
            let found = repo::list(third.store(), &old1).await.unwrap();
            assert_eq!(
                found.len(),
                1,
                "a moved row with a new id is in a block too"
            );
            assert_eq!(all_rows[0].message, "late 1");
            assert_eq!(all_rows[1].message, "late 0");
            assert!(all_rows[1].id > newest[0].id);
            assert_eq!(repo::count(&h.store).await.unwrap(), 0);
        }
        None => {
            // PostgreSQL: the hub's database holds them.
            assert_eq!(repo::list(messages.store(), &all()).await.unwrap(), before);
        }
    }
}

/// The messages of `all` that `filter` selects, newest first: what the list must answer, worked
/// out without the store.
fn expected(all: &[vigie_logs::repo::StoredMessage], filter: &LogFilter) -> Vec<i64> {
    all.iter()
        .filter(|m| filter.host.as_ref().is_none_or(|h| &m.host == h))
        .filter(|m| {
            filter
                .severity
                .is_none_or(|s| m.severity.is_some_and(|ms| ms <= i32::from(s)))
        })
        .filter(|m| {
            filter
                .facility
                .is_none_or(|f| m.facility == Some(i32::from(f)))
        })
        .filter(|m| filter.from.is_none_or(|t| m.received_at >= t))
        .filter(|m| filter.to.is_none_or(|t| m.received_at < t))
        .filter(|m| filter.before.is_none_or(|id| m.id < id))
        .filter(|m| filter.after.is_none_or(|id| m.id > id))
        .take(filter.limit as usize)
        .map(|m| m.id)
        .collect()
}

/// The host of message `i` of batch `b` in the test below.
fn host_of(b: i64, i: i64) -> String {
    match (b, i) {
        (3, 7) => "rare".to_owned(),
        (20, _) => format!("many{}", i * 2 + b % 2),
        _ => format!("rtr{}", i % 5),
    }
}

#[tokio::test]
async fn filtered_lists_read_the_blocks_and_miss_nothing() {
    let h = hub().await;
    // To the microsecond, as stored (the bounds below are compared with stored times).
    let start = vigie_core::time::to_store_precision(Utc::now() - chrono::Duration::hours(1));
    // 30 batches (one block each), a minute apart; `rare` only in batch 3, 80 hosts (too many
    // to list in its block) in batch 20, severities and facilities varying with the batch.
    for b in 0..30_i64 {
        let at = |i: i64| start + chrono::Duration::minutes(b) + chrono::Duration::milliseconds(i);
        let batch: Vec<_> = (0..40_i64)
            .map(|i| {
                let host = host_of(b, i);
                let pri = ((b + i) % 4) * 8 + if i % 13 == 0 { 2 } else { 6 };
                message(
                    &format!("<{pri}>Oct 11 22:14:15 {host} app: m {b}.{i}"),
                    at(i),
                )
            })
            .collect();
        repo::insert_batch(&h.store, &batch).await.unwrap();
    }
    let mut everything = repo::list(&h.store, &all()).await.unwrap();
    assert_eq!(everything.len(), 1200);
    // Hosts repeat across a batch's rows (bound once per batch): each row still has its own.
    for m in &everything {
        let (b, i) = m.message["m ".len()..].split_once('.').unwrap();
        let (b, i): (i64, i64) = (b.parse().unwrap(), i.parse().unwrap());
        let host = host_of(b, i);
        assert_eq!(
            (m.host.as_str(), m.app_name.as_deref()),
            (host.as_str(), Some("app"))
        );
    }
    everything.sort_by_key(|m| std::cmp::Reverse(m.id));
    let filter = |f: LogFilter| LogFilter {
        limit: if f.limit == 0 { 50 } else { f.limit },
        ..f
    };
    let cases = [
        filter(LogFilter {
            host: Some("rtr2".into()),
            ..LogFilter::default()
        }),
        filter(LogFilter {
            host: Some("rare".into()),
            ..LogFilter::default()
        }),
        filter(LogFilter {
            host: Some("many42".into()),
            ..LogFilter::default()
        }),
        filter(LogFilter {
            host: Some("nobody".into()),
            ..LogFilter::default()
        }),
        filter(LogFilter {
            severity: Some(3),
            ..LogFilter::default()
        }),
        filter(LogFilter {
            severity: Some(3),
            limit: 1000,
            ..LogFilter::default()
        }),
        filter(LogFilter {
            facility: Some(3),
            host: Some("rtr1".into()),
            ..LogFilter::default()
        }),
        filter(LogFilter {
            from: Some(start + chrono::Duration::minutes(10)),
            to: Some(start + chrono::Duration::minutes(12) + chrono::Duration::milliseconds(5)),
            limit: 1000,
            ..LogFilter::default()
        }),
        filter(LogFilter {
            host: Some("rtr4".into()),
            before: Some(everything[700].id),
            after: Some(everything[1000].id),
            ..LogFilter::default()
        }),
        filter(LogFilter {
            to: Some(start + chrono::Duration::minutes(2)),
            limit: 5,
            ..LogFilter::default()
        }),
    ];
    for case in &cases {
        let listed: Vec<i64> = repo::list(&h.store, case)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        let wanted = expected(&everything, case);
        assert_eq!(listed, wanted, "{case:?}");
    }
    // The cases do reach where they should: the rare host, the unlisted block's hosts, a full
    // page of a common one, and a time range of two minutes and five milliseconds.
    assert_eq!(expected(&everything, &cases[1]).len(), 1);
    assert_eq!(expected(&everything, &cases[2]).len(), 1);
    assert_eq!(expected(&everything, &cases[0]).len(), 50);
    assert_eq!(expected(&everything, &cases[7]).len(), 85);

    // Purges leave no block without messages, and the lists stay whole.
    let purged = vigie_logs::repo::delete_ids_below(&h.store, everything[420].id + 1)
        .await
        .unwrap();
    assert_eq!(purged, 780);
    assert_eq!(blocks(&h.store).await, 11, "a block partly purged stays");
    let left = repo::list(
        &h.store,
        &LogFilter {
            host: Some("rare".into()),
            ..all()
        },
    )
    .await
    .unwrap();
    assert!(left.is_empty());
    let purged = vigie_logs::repo::delete_ids_below(&h.store, i64::MAX)
        .await
        .unwrap();
    assert_eq!(purged, 420);
    assert_eq!(blocks(&h.store).await, 0);
    // From an empty table the next batch starts a block of its own, its ids after the purged
    // ones (a live tail's bound stays meaningful).
    repo::insert_batch(
        &h.store,
        &[message("<13>Oct 11 22:14:15 rtr0 app: again", Utc::now())],
    )
    .await
    .unwrap();
    let again = repo::list(
        &h.store,
        &LogFilter {
            host: Some("rtr0".into()),
            ..all()
        },
    )
    .await
    .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, everything[0].id + 1);
    assert_eq!(blocks(&h.store).await, 1);
}

#[tokio::test]
async fn the_view_shows_a_row_per_message() {
    let h = hub().await;
    let now = Utc::now();
    let batch = vec![
        message(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog 1234 ID47 [ex@1 iut="3"] An "event""#,
            now,
        ),
        message("<34>Oct 11 22:14:15 rtr1 su: 'su root' failed", now),
    ];
    repo::insert_batch(&h.store, &batch).await.unwrap();
    repo::insert_batch(
        &h.store,
        &[message("<13>Oct 11 22:14:15 rtr2 app: third", now)],
    )
    .await
    .unwrap();
    let listed = repo::list(&h.store, &all()).await.unwrap();
    let rows: Vec<(i64, String, String, Option<String>)> =
        vigie_core::on_pool!(&h.store, pool => sqlx::query_as(
        "SELECT id, host, message, app_name FROM syslog_messages ORDER BY id DESC",
    )
    .fetch_all(pool)
    .await)
        .unwrap();
    let wanted: Vec<_> = listed
        .iter()
        .map(|m| (m.id, m.host.clone(), m.message.clone(), m.app_name.clone()))
        .collect();
    assert_eq!(rows, wanted);
    let (severity, truncated): (Option<i64>, bool) =
        vigie_core::on_pool!(&h.store, pool => sqlx::query_as(
        "SELECT CAST(severity AS BIGINT), truncated FROM syslog_messages WHERE host = 'rtr1'",
    )
    .fetch_one(pool)
    .await)
        .unwrap();
    assert_eq!((severity, truncated), (Some(2), false));
}

#[tokio::test]
async fn concurrent_batches_get_ids_of_their_own() {
    let h = hub().await;
    let now = Utc::now();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = h.store.clone();
            tokio::spawn(async move {
                let batch: Vec<_> = (0..50)
                    .map(|n| message(&format!("<13>Oct 11 22:14:15 w{w} app: {n}"), now))
                    .collect();
                repo::insert_batch(&store, &batch).await.unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let listed = repo::list(&h.store, &all()).await.unwrap();
    assert_eq!(listed.len(), 400);
    let (min, max) = repo::id_range(&h.store).await.unwrap().unwrap();
    assert_eq!(max - min + 1, 400, "no id given twice, none skipped");
    for w in 0..8 {
        let mine: Vec<String> = listed
            .iter()
            .filter(|m| m.host == format!("w{w}"))
            .map(|m| m.message.clone())
            .collect();
        let wanted: Vec<String> = (0..50).rev().map(|n| n.to_string()).collect();
        assert_eq!(mine, wanted, "a batch's messages keep their order");
    }
}

#[tokio::test]
async fn by_age_messages_go_in_their_order() {
    let h = hub().await;
    let old = Utc::now() - chrono::Duration::days(31);
    let recent = Utc::now() - chrono::Duration::days(1);
    // Old, recent, then old again (received out of order): the last one waits for the recent.
    let batch = vec![
        message("<13>Oct 11 22:14:15 h app: old 0", old),
        message("<13>Oct 11 22:14:15 h app: old 1", old),
        message("<13>Oct 11 22:14:15 h app: recent", recent),
        message("<13>Oct 11 22:14:15 h app: old 2", old),
    ];
    repo::insert_batch(&h.store, &batch).await.unwrap();
    let thirty_days = Retention {
        days: 30,
        ..retention()
    };
    assert_eq!(purge(&h.store, &thirty_days).await.unwrap().by_age, 2);
    let left: Vec<String> = repo::list(&h.store, &all())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.message)
        .collect();
    assert_eq!(left, ["old 2", "recent"]);
    // The block was written again from its new first id: lists and ranges agree.
    let (min, max) = repo::id_range(&h.store).await.unwrap().unwrap();
    assert_eq!(max - min + 1, 2);
    let recent_only = LogFilter {
        from: Some(recent - chrono::Duration::seconds(1)),
        ..all()
    };
    assert_eq!(repo::list(&h.store, &recent_only).await.unwrap().len(), 1);
}

async fn blocks(store: &vigie_core::store::Store) -> i64 {
    vigie_core::on_pool!(store, pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM syslog_blocks",
    )
    .fetch_one(pool)
    .await)
    .unwrap()
}

static HUB_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static HUB_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
static SYSLOG_FILE: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite-syslog");

/// Stores `n` messages the way versions before the blocks did (no block), from 12 hosts, one
/// of them (`lone`) only once.
async fn stored_without_blocks(store: &vigie_core::store::Store, n: i64) {
    let base = vigie_core::time::to_store_precision(Utc::now() - chrono::Duration::hours(2));
    for i in 0..n {
        let host = if i == 700 {
            "lone".to_owned()
        } else {
            format!("h{}", i % 11)
        };
        vigie_core::on_pool!(store, pool => sqlx::query(
            "INSERT INTO syslog_messages (received_at, sender, transport, host, facility, \
             severity, message, raw, variant) VALUES ($1, '192.0.2.1:514', 'udp', $2, $3, $4, \
             'm', 'raw m', 'rfc3164')",
        )
        .bind(base + chrono::Duration::seconds(i))
        .bind(host)
        .bind((i % 24) as i16)
        .bind((i % 8) as i16)
        .execute(pool)
        .await
        .map(drop))
        .unwrap();
    }
}

/// Stores one message with every column set, as versions before the blocks of messages did.
async fn stored_in_full(store: &vigie_core::store::Store) {
    let received = vigie_core::time::to_store_precision(Utc::now() - chrono::Duration::minutes(30));
    let sent = chrono::DateTime::parse_from_rfc3339("2003-10-11T22:14:15.003+02:00")
        .unwrap()
        .to_utc();
    vigie_core::on_pool!(store, pool => sqlx::query(
        "INSERT INTO syslog_messages (received_at, sender, transport, host, facility, severity, \
         timestamp, app_name, proc_id, msg_id, structured_data, message, raw, variant, truncated) \
         VALUES ($1, '192.0.2.9:601', 'tls', 'full', 20, 5, $2, 'evntslog', '1234', 'ID47', \
         '{\"ex@1\":{\"iut\":\"3\"}}', 'An \"event\" é', 'raw line', 'rfc5424', TRUE)",
    )
    .bind(received)
    .bind(sent)
    .execute(pool)
    .await
    .map(drop))
    .unwrap();
}

/// The message of [`stored_in_full`], the newest of `n`, read back whole after the upgrade.
async fn kept_in_full(store: &vigie_core::store::Store, n: i64) {
    let newest = repo::list(store, &LogFilter { limit: 1, ..all() })
        .await
        .unwrap();
    let m = &newest[0];
    assert_eq!(m.id, n, "numbered again from 1 in their order");
    assert_eq!(
        (m.sender.as_str(), m.transport.as_str(), m.host.as_str()),
        ("192.0.2.9:601", "tls", "full")
    );
    assert_eq!((m.facility, m.severity), (Some(20), Some(5)));
    assert_eq!(
        m.timestamp.unwrap().to_rfc3339(),
        "2003-10-11T20:14:15.003+00:00"
    );
    assert_eq!(
        (
            m.app_name.as_deref(),
            m.proc_id.as_deref(),
            m.msg_id.as_deref()
        ),
        (Some("evntslog"), Some("1234"), Some("ID47"))
    );
    assert_eq!(m.structured_data, Some(json!({"ex@1": {"iut": "3"}})));
    assert_eq!(
        (m.message.as_str(), m.raw.as_str(), m.variant.as_str()),
        ("An \"event\" é", "raw line", "rfc5424")
    );
    assert!(m.truncated);
    assert!(Utc::now() - m.received_at < chrono::Duration::minutes(31));
}

/// After the upgrade, filtered lists answer what a full scan does, and new batches follow.
async fn answers_after_upgrade(store: &vigie_core::store::Store, n: i64) {
    assert_eq!(blocks(store).await, (n + 1023) / 1024, "blocks of 1024 ids");
    let mut everything = repo::list(store, &all()).await.unwrap();
    assert_eq!(everything.len() as i64, n);
    everything.sort_by_key(|m| std::cmp::Reverse(m.id));
    let start = everything.last().unwrap().received_at;
    let cases = [
        LogFilter {
            host: Some("lone".into()),
            ..all()
        },
        LogFilter {
            host: Some("h3".into()),
            severity: Some(2),
            ..all()
        },
        LogFilter {
            facility: Some(5),
            from: Some(start + chrono::Duration::seconds(500)),
            to: Some(start + chrono::Duration::seconds(1050)),
            ..all()
        },
    ];
    for case in &cases {
        let listed: Vec<i64> = repo::list(store, case)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(listed, expected(&everything, case), "{case:?}");
        assert!(!listed.is_empty(), "{case:?}");
    }
    repo::insert_batch(
        store,
        &[message("<13>Oct 11 22:14:15 lone app: new", Utc::now())],
    )
    .await
    .unwrap();
    let lone = repo::list(store, &cases[0]).await.unwrap();
    assert_eq!(lone.len(), 2);
    assert_eq!(lone[0].message, "new");
}

#[tokio::test]
async fn messages_stored_before_the_blocks_get_theirs_on_upgrade() {
    const N: i64 = 1100;
    let db = vigie_core::testing::TestDb::create().await.unwrap();
    let store =
        vigie_core::store::Store::connect(&vigie_core::store::StoreOptions::new(db.url.clone()))
            .await
            .unwrap();
    // The hub's database at the migration before the blocks (0014), with messages.
    match &store {
        vigie_core::store::Store::Sqlite(pool, _) => HUB_SQLITE.run_to(14, pool).await.unwrap(),
        vigie_core::store::Store::Postgres(pool) => HUB_POSTGRES.run_to(14, pool).await.unwrap(),
    }
    stored_without_blocks(&store, N).await;
    stored_in_full(&store).await;
    store.migrate().await.unwrap();
    kept_in_full(&store, N + 1).await;
    answers_after_upgrade(&store, N + 1).await;

    // On SQLite, the messages' own file too (its migration 0002).
    if let Some(own) = store.sqlite_sibling("syslog").await.unwrap() {
        let vigie_core::store::Store::Sqlite(pool, _) = &own else {
            unreachable!("a SQLite sibling")
        };
        SYSLOG_FILE.run_to(1, pool).await.unwrap();
        stored_without_blocks(&own, N).await;
        stored_in_full(&own).await;
        SYSLOG_FILE.run(pool).await.unwrap();
        kept_in_full(&own, N + 1).await;
        answers_after_upgrade(&own, N + 1).await;
    }
}

#[tokio::test]
async fn small_blocks_are_merged_without_changing_a_list() {
    let h = hub().await;
    let start = vigie_core::time::to_store_precision(Utc::now() - chrono::Duration::minutes(5));
    // A quiet period: 30 batches of 3 messages, then 3 of 400 (a burst).
    for b in 0..33_i64 {
        let size = if b < 30 { 3 } else { 400 };
        let batch: Vec<_> = (0..size)
            .map(|i| {
                let pri = if i % 2 == 0 { 11 } else { 14 };
                message(
                    &format!("<{pri}>Oct 11 22:14:15 rtr{} app: m {b}.{i}", b % 4),
                    start + chrono::Duration::seconds(b) + chrono::Duration::milliseconds(i),
                )
            })
            .collect();
        repo::insert_batch(&h.store, &batch).await.unwrap();
    }
    assert_eq!(blocks(&h.store).await, 33);
    let before = repo::list(&h.store, &all()).await.unwrap();
    let rtr2_errors = LogFilter {
        host: Some("rtr2".into()),
        severity: Some(3),
        ..all()
    };
    let filtered = repo::list(&h.store, &rtr2_errors).await.unwrap();

    let mut from = 0;
    let gone = vigie_logs::retention::compact(&h.store, &retention(), &mut from)
        .await
        .unwrap();
    // 90 + 400 + 400 messages fit in one block, the last 400 do not: two blocks are left.
    assert_eq!(gone, 31);
    assert_eq!(blocks(&h.store).await, 2);
    assert_eq!(repo::list(&h.store, &all()).await.unwrap(), before);
    assert_eq!(repo::list(&h.store, &rtr2_errors).await.unwrap(), filtered);
    let (min, max) = repo::id_range(&h.store).await.unwrap().unwrap();
    assert_eq!((min, max - min + 1), (before[1289].id, 1290));

    // Nothing new: nothing to do. New small blocks join the last, partial one.
    assert_eq!(
        vigie_logs::retention::compact(&h.store, &retention(), &mut from)
            .await
            .unwrap(),
        0
    );
    for n in 0..5 {
        repo::insert_batch(
            &h.store,
            &[message(
                &format!("<13>Oct 11 22:14:15 late app: {n}"),
                Utc::now(),
            )],
        )
        .await
        .unwrap();
    }
    assert_eq!(
        vigie_logs::retention::compact(&h.store, &retention(), &mut from)
            .await
            .unwrap(),
        5
    );
    assert_eq!(blocks(&h.store).await, 2);
    let now = repo::list(&h.store, &all()).await.unwrap();
    assert_eq!(now.len(), 1295);
    assert_eq!(&now[5..], &before[..]);
    let late = LogFilter {
        host: Some("late".into()),
        ..all()
    };
    assert_eq!(repo::list(&h.store, &late).await.unwrap().len(), 5);
}
