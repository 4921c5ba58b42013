//! The configurable SQL source, on MariaDB and on PostgreSQL.

use serde_json::{Value, json};
use vigie_poll::SourceError;
use vigie_source::Level;

use crate::support::{MyDb, PgDb};
use crate::{poll, poll_all, poll_error, source};

fn settings(query: &str) -> Value {
    json!({
        "query": query,
        "watermark": {"id_column": "id"},
        "mapping": {
            "resource": "host",
            "message": "msg",
            "severity": "sev",
            "levels": {"1": "critical", "2": "warning", "3": "low", "ok": "clear", "debug": "ignore"},
            "occurred_at": "ts",
            "source_ref": "id",
            "event": "check_name",
            "attributes": ["site"]
        },
        "batch": 2
    })
}

const ROWS: &str = "INSERT INTO events (id, host, sev, msg, ts, check_name, site) VALUES \
    (1, 'rtr-wan-1', '1', 'WAN link down', '2025-01-14 09:00:00', 'wan', 'dakar'),\
    (2, 'srv-1', '2', 'disk 91% full', '2025-01-14 09:01:00', 'disk', 'dakar'),\
    (3, 'srv-1', 'debug', 'noise', '2025-01-14 09:02:00', 'noise', NULL),\
    (4, 'rtr-wan-1', 'ok', 'WAN link up', '2025-01-14 09:03:00', 'wan', 'dakar'),\
    (5, 'srv-2', '3', 'low thing', '2025-01-14 09:04:00', 'x', 'abidjan')";

async fn check(url: &str) {
    let s = source(
        "custom",
        "sql",
        url,
        settings(
            "SELECT id, host, sev, msg, ts, check_name, site FROM events WHERE id > :watermark ORDER BY id",
        ),
    );
    let (batches, position) = poll_all(s.as_ref(), None).await;
    assert_eq!(batches.len(), 3, "batches of 2");
    let records: Vec<_> = batches.iter().flat_map(|b| b.records.clone()).collect();
    // `debug` is ignored; rows are events, so the clear of row 4 is delivered even on a first read.
    let summary: Vec<(String, Option<Level>, bool)> = records
        .iter()
        .map(|r| (r.resource.clone(), r.level, r.clear))
        .collect();
    assert_eq!(
        summary,
        [
            ("rtr-wan-1".to_owned(), Some(Level::Critical), false),
            ("srv-1".to_owned(), Some(Level::Warning), false),
            ("rtr-wan-1".to_owned(), Some(Level::Warning), true),
            ("srv-2".to_owned(), Some(Level::Low), false),
        ]
    );
    assert_eq!(records[0].attributes["event"], json!("wan"));
    assert_eq!(records[0].attributes["site"], json!("dakar"));
    assert_eq!(records[0].source_ref.as_deref(), Some("1"));
    assert_eq!(
        records[0].occurred_at.map(|t| t.to_rfc3339()),
        Some("2025-01-14T09:00:00+00:00".into())
    );
    assert!(position.is_some());
}

#[tokio::test]
async fn a_query_source_on_mariadb() {
    let db = MyDb::create("sql").await;
    db.exec("CREATE TABLE events (id INT PRIMARY KEY, host VARCHAR(100), sev VARCHAR(10), msg TEXT, ts DATETIME, check_name VARCHAR(50), site VARCHAR(50)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4").await;
    db.exec(ROWS).await;
    check(&db.url).await;
    let s = source(
        "custom",
        "sql",
        &db.url,
        settings(
            "SELECT id, host, sev, msg, ts, check_name, site FROM events WHERE id > :watermark ORDER BY id",
        ),
    );
    let (_, position) = poll_all(s.as_ref(), None).await;
    db.exec("INSERT INTO events (id, host, sev, msg, ts, check_name, site) VALUES (6, 'srv-1', 'ok', 'disk fine', '2025-01-14 10:00:00', 'disk', 'dakar')").await;
    let next = poll(s.as_ref(), position.as_deref()).await;
    assert_eq!(next.records.len(), 1);
    assert!(next.records[0].clear);

    // A NULL where the mapping needs a value.
    db.exec("INSERT INTO events (id, host, sev, msg, ts) VALUES (7, NULL, '1', 'who?', '2025-01-14 10:01:00')").await;
    let e = poll_error(s.poll(next.position.as_deref()).await);
    assert!(matches!(e, SourceError::Data(_)));
    assert!(
        e.to_string().contains("the query row id=7") && e.to_string().contains("`host`"),
        "{e}"
    );

    // A mapping naming a column the query does not return: said before any row is read.
    let mut bad = settings(
        "SELECT id, host, sev, msg, ts, check_name FROM events WHERE id > :watermark ORDER BY id",
    );
    bad["batch"] = json!(10);
    let s = source("custom", "sql", &db.url, bad);
    let e = poll_error(s.poll(None).await);
    assert!(matches!(e, SourceError::Schema(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("mapping.attributes names the column `site`"),
        "{e}"
    );

    // Queries that are not a single SELECT with the watermark are refused when configured.
    for (query, expected) in [
        (
            "UPDATE events SET sev = '1' WHERE id > :watermark ORDER BY id",
            "must be a SELECT",
        ),
        ("SELECT id FROM events ORDER BY id", ":watermark"),
        (
            "SELECT id FROM events WHERE id > :watermark ORDER BY id; DELETE FROM events",
            "single statement",
        ),
    ] {
        let e = vigie_sql::build(&vigie_sql::SourceSpec {
            name: "custom".into(),
            kind: "sql".into(),
            url: db.url.clone(),
            domain: None,
            settings: settings(query),
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains(expected), "{query}: {e}");
    }

    // The query runs read-only: a function that writes cannot be used to change the source.
    db.exec("CREATE FUNCTION vigie_test_writes() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO events (id, host, msg) VALUES (99, 'x', 'x'); RETURN 1; END").await;
    let writer = source(
        "custom",
        "sql",
        &db.url,
        json!({
            "query": "SELECT id, host, msg, vigie_test_writes() AS w FROM events WHERE id > :watermark ORDER BY id",
            "watermark": {"id_column": "id"},
            "mapping": {"resource": "host", "message": "msg"}
        }),
    );
    let e = poll_error(writer.poll(None).await);
    assert!(
        e.to_string().to_lowercase().contains("read only")
            || e.to_string().to_lowercase().contains("read-only"),
        "{e}"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn a_query_source_on_postgresql_with_a_time_watermark() {
    let db = PgDb::create("sqlsrc").await;
    db.exec("CREATE TABLE events (id INT PRIMARY KEY, host TEXT, sev TEXT, msg TEXT, ts TIMESTAMP, check_name TEXT, site TEXT)").await;
    db.exec(ROWS).await;
    check(&db.url).await;
    // A (time, id) watermark over rows updated in place.
    db.exec("CREATE TABLE states (id INT PRIMARY KEY, host TEXT NOT NULL, state TEXT NOT NULL, changed TIMESTAMP NOT NULL)").await;
    db.exec("INSERT INTO states VALUES (1, 'a', 'down', '2025-01-14 09:00:00'), (2, 'b', 'down', '2025-01-14 09:00:00'), (3, 'c', 'down', '2025-01-14 09:00:00')").await;
    let s = source(
        "states",
        "sql",
        &db.url,
        json!({
            "query": "SELECT id, host, state, changed FROM states WHERE changed > :watermark_time OR (changed = :watermark_time AND id > :watermark_id) ORDER BY changed, id",
            "watermark": {"id_column": "id", "time_column": "changed"},
            "mapping": {"resource": "host", "message": "state", "severity": "state", "levels": {"down": "critical", "up": "clear"}, "source_ref": "id", "event": "host"},
            "batch": 2
        }),
    );
    let (batches, position) = poll_all(s.as_ref(), None).await;
    let n: usize = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(n, 3, "rows sharing a time are all read across batches");
    db.exec("UPDATE states SET state = 'up', changed = '2025-01-14 09:05:00' WHERE id = 2")
        .await;
    let next = poll(s.as_ref(), position.as_deref()).await;
    assert_eq!(next.records.len(), 1);
    assert!(next.records[0].clear);
    assert_eq!(
        next.records[0].source_ref.as_deref(),
        Some("2@2025-01-14T09:05:00")
    );
}
