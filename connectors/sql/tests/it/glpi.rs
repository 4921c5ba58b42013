//! GLPI tickets and computers on MariaDB.

use serde_json::json;
use vigie_poll::SourceError;
use vigie_source::Level;

use crate::support::{GLPI_SCHEMA, MyDb, ticket_insert};
use crate::{poll, poll_all, poll_error, source};

async fn glpi_db() -> MyDb {
    let db = MyDb::create("glpi").await;
    db.exec(GLPI_SCHEMA).await;
    db
}

#[tokio::test]
async fn tickets_become_records_with_levels_links_and_clears() {
    let db = glpi_db().await;
    // The reference's own example row, and tickets of every priority and state.
    db.exec(&format!(
        "{};\n{};\n{};\n{};\n\
         INSERT INTO glpi_computers (id,entities_id,name,serial,otherserial,states_id,locations_id,is_deleted,is_dynamic,date_mod) \
           VALUES (88,0,'PC-COMPTA-04','5CG1234XYZ','INV-00412',1,5,0,1,'2025-01-10 18:00:00');\n\
         INSERT INTO glpi_items_tickets (itemtype, items_id, tickets_id) VALUES ('Computer', 88, 4521)",
        ticket_insert(4521, "VPN down for branch office", 2, 4, 3, 4, "2025-01-14 09:40:05"),
        ticket_insert(4522, "Printer jam", 1, 2, 1, 1, "2025-01-14 10:00:00"),
        ticket_insert(4523, "Core switch down", 3, 5, 5, 6, "2025-01-14 10:05:00"),
        ticket_insert(4524, "Old problem", 6, 3, 3, 3, "2025-01-14 10:10:00"),
    ))
    .await;
    let s = source(
        "glpi-prod",
        "glpi",
        &db.url,
        json!({"base_url": "https://glpi.example.org/"}),
    );
    let (batches, position) = poll_all(s.as_ref(), None).await;
    let records: Vec<_> = batches.iter().flat_map(|b| b.records.clone()).collect();
    // The closed ticket is not reported on a first read: there is no alert of ours to clear.
    assert_eq!(records.len(), 3, "{records:#?}");
    let vpn = &records[0];
    assert_eq!(vpn.source, "glpi-prod");
    assert_eq!(vpn.resource, "ticket 4521");
    assert_eq!(
        vpn.message,
        "#4521 VPN down for branch office (processing (assigned), priority high)"
    );
    assert_eq!(vpn.level, Some(Level::Warning));
    assert_eq!(vpn.domain.as_deref(), Some("helpdesk"));
    assert!(!vpn.clear);
    assert_eq!(
        vpn.source_ref.as_deref(),
        Some("ticket/4521@2025-01-14T09:40:05/2")
    );
    assert_eq!(vpn.attributes["event"], json!("glpi-ticket-4521"));
    assert_eq!(vpn.attributes["category"], json!("Network > VPN"));
    assert_eq!(vpn.attributes["items"], json!(["Computer PC-COMPTA-04"]));
    assert_eq!(
        vpn.attributes["url"],
        json!("https://glpi.example.org/front/ticket.form.php?id=4521")
    );
    assert_eq!(
        vpn.occurred_at.map(|t| t.to_rfc3339()),
        Some("2025-01-14T09:40:05+00:00".into())
    );
    assert_eq!(records[1].level, Some(Level::Low));
    assert_eq!(records[2].level, Some(Level::Critical));

    let computers: Vec<_> = batches
        .iter()
        .flat_map(|b| b.equipment.items.clone())
        .collect();
    assert_eq!(computers.len(), 1);
    assert_eq!(computers[0].name, "PC-COMPTA-04");
    assert_eq!(computers[0].source_ref, "computer/88");
    assert_eq!(computers[0].attributes["otherserial"], json!("INV-00412"));
    assert!(!computers[0].removed);

    // Nothing new: nothing read.
    let again = poll(s.as_ref(), position.as_deref()).await;
    assert_eq!(again.rows_read, 0);
    assert!(again.records.is_empty());

    // The ticket is solved, another one reopened after the first read: both are read again,
    // the solved one as a clear.
    db.exec(
        "UPDATE glpi_tickets SET status = 5, solvedate = '2025-01-15 08:00:00', date_mod = '2025-01-15 08:00:00' WHERE id = 4521;\n\
         UPDATE glpi_tickets SET status = 2, date_mod = '2025-01-15 08:01:00' WHERE id = 4524",
    )
    .await;
    let next = poll(s.as_ref(), position.as_deref()).await;
    assert_eq!(next.records.len(), 2);
    let solved = &next.records[0];
    assert!(solved.clear);
    assert_eq!(solved.attributes["event"], json!("glpi-ticket-4521"));
    assert_eq!(
        solved.source_ref.as_deref(),
        Some("ticket/4521@2025-01-15T08:00:00/5")
    );
    assert!(!next.records[1].clear);
    db.drop_db().await;
}

#[tokio::test]
async fn rows_sharing_a_timestamp_are_never_skipped() {
    let db = glpi_db().await;
    let mut sql = Vec::new();
    for id in 1..=5 {
        sql.push(ticket_insert(
            id,
            &format!("t{id}"),
            1,
            3,
            3,
            3,
            "2025-01-14 09:00:00",
        ));
    }
    db.exec(&sql.join(";\n")).await;
    let s = source(
        "g",
        "glpi",
        &db.url,
        json!({"batch": 2, "computers": false}),
    );
    let first = poll(s.as_ref(), None).await;
    assert_eq!(first.records.len(), 2);
    assert!(first.more);
    // A row with the same time and a higher id arrives between two polls.
    db.exec(&ticket_insert(6, "t6", 1, 3, 3, 3, "2025-01-14 09:00:00"))
        .await;
    let (rest, _) = poll_all(s.as_ref(), first.position.clone()).await;
    let ids: Vec<String> = first
        .records
        .iter()
        .chain(rest.iter().flat_map(|b| b.records.iter()))
        .map(|r| r.resource.clone())
        .collect();
    assert_eq!(
        ids,
        [
            "ticket 1", "ticket 2", "ticket 3", "ticket 4", "ticket 5", "ticket 6"
        ]
    );
    db.drop_db().await;
}

#[tokio::test]
async fn rows_written_in_the_settle_window_wait_for_the_next_poll() {
    let db = glpi_db().await;
    db.exec(
        "INSERT INTO glpi_tickets (id,name,date,date_mod,status,urgency,impact,priority) \
         VALUES (1,'just now',NOW(),NOW(),1,3,3,3)",
    )
    .await;
    let s = source(
        "g",
        "glpi",
        &db.url,
        json!({"settle_seconds": 1, "computers": false}),
    );
    let first = poll(s.as_ref(), None).await;
    assert_eq!(
        first.rows_read, 0,
        "a row of this very second is left for later"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let second = poll(s.as_ref(), first.position.as_deref()).await;
    assert_eq!(second.records.len(), 1);
    db.drop_db().await;
}

#[tokio::test]
async fn a_null_stops_at_its_row_after_committing_the_rows_before_it() {
    let db = glpi_db().await;
    db.exec(&format!(
        "{};\n{};\n{}",
        ticket_insert(1, "ok", 1, 3, 3, 3, "2025-01-14 09:00:00"),
        ticket_insert(2, "bad", 1, 3, 3, 3, "2025-01-14 09:00:01"),
        ticket_insert(3, "after", 1, 3, 3, 3, "2025-01-14 09:00:02"),
    ))
    .await;
    // An older GLPI whose `status` lost its NOT NULL and holds a NULL.
    db.exec("ALTER TABLE glpi_tickets MODIFY `status` int NULL;\nUPDATE glpi_tickets SET status = NULL WHERE id = 2").await;
    let s = source("g", "glpi", &db.url, json!({"computers": false}));
    let batch = poll(s.as_ref(), None).await;
    assert_eq!(batch.records.len(), 1, "the row before the bad one is kept");
    let e = batch.stopped.clone().expect("stopped at the bad row");
    assert!(matches!(e, SourceError::Data(_)));
    let text = e.to_string();
    assert!(
        text.contains("glpi_tickets row id=2")
            && text.contains("`status`")
            && text.contains("NULL"),
        "{text}"
    );
    // The watermark stops before the bad row: the next poll reads it again.
    let again = poll(s.as_ref(), batch.position.as_deref()).await;
    assert!(again.records.is_empty());
    assert!(again.stopped.is_some());
    db.exec("UPDATE glpi_tickets SET status = 2 WHERE id = 2")
        .await;
    let fixed = poll(s.as_ref(), batch.position.as_deref()).await;
    assert_eq!(fixed.records.len(), 2);
    db.drop_db().await;
}

#[tokio::test]
async fn bad_connections_and_schemas_give_clear_errors() {
    let db = glpi_db().await;
    let base = crate::support::mysql_admin_url();
    let host = crate::support::host_port(&base, 3306);

    // Wrong credentials: a login error, and the password is not in it.
    let bad = source(
        "g",
        "glpi",
        &format!("mysql://nobody:hunter2secret@{host}/{}", db.name),
        json!({}),
    );
    let e = poll_error(bad.poll(None).await);
    assert!(matches!(e, SourceError::Login(_)), "{e:?}");
    assert!(!e.to_string().contains("hunter2secret"), "{e}");
    assert!(e.to_string().contains("Access denied"), "{e}");

    // Unknown database.
    let unknown = source(
        "g",
        "glpi",
        &crate::support::with_database(&base, "vigie_test_no_such_db"),
        json!({}),
    );
    let e = poll_error(unknown.poll(None).await);
    assert!(matches!(e, SourceError::Login(_)), "{e:?}");
    assert!(e.to_string().contains("Unknown database"), "{e}");

    // Nothing listens there.
    let closed = source("g", "glpi", "mysql://root@127.0.0.1:9/glpi", json!({}));
    let e = poll_error(closed.poll(None).await);
    assert!(matches!(e, SourceError::Unreachable(_)), "{e:?}");

    // A GLPI whose tickets table lacks a column the connector reads.
    db.exec("ALTER TABLE glpi_tickets DROP COLUMN urgency")
        .await;
    let s = source("g", "glpi", &db.url, json!({}));
    let e = poll_error(s.poll(None).await);
    assert!(matches!(e, SourceError::Schema(_)), "{e:?}");
    assert!(e.to_string().contains("urgency"), "{e}");

    // A missing table.
    db.exec("DROP TABLE glpi_tickets").await;
    let e = poll_error(s.poll(None).await);
    assert!(matches!(e, SourceError::Schema(_)), "{e:?}");
    assert!(e.to_string().contains("glpi_tickets"), "{e}");

    // Bad settings are refused before any connection.
    let refused = vigie_sql::build(&vigie_sql::SourceSpec {
        name: "g".into(),
        kind: "glpi".into(),
        url: db.url.clone(),
        domain: None,
        settings: json!({"priority_level": [0, 0, 1, 1, 2, 2]}),
    });
    let e = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("priority_level"), "{e}");
    db.drop_db().await;
}

#[tokio::test]
async fn text_that_is_not_utf8_is_a_clear_error() {
    let db = glpi_db().await;
    db.exec(&ticket_insert(1, "fine", 1, 3, 3, 3, "2025-01-14 09:00:00"))
        .await;
    // A ticket name written through a latin1 connection into a binary column by an older tool.
    db.exec("ALTER TABLE glpi_tickets MODIFY `name` varbinary(255) DEFAULT NULL")
        .await;
    db.exec_params(
        "INSERT INTO glpi_tickets (id,name,date,date_mod,status,urgency,impact,priority) VALUES (2, ?, '2025-01-14 09:00:01', '2025-01-14 09:00:01', 1, 3, 3, 3)",
        vec![mysql_async::Value::Bytes(b"R\xe9seau coup\xe9".to_vec())],
    )
    .await;
    let s = source("g", "glpi", &db.url, json!({"computers": false}));
    let batch = poll(s.as_ref(), None).await;
    assert_eq!(batch.records.len(), 1);
    let e = batch.stopped.expect("stopped at the row");
    assert!(matches!(e, SourceError::Data(_)));
    let text = e.to_string();
    assert!(
        text.contains("row id=2") && text.contains("UTF-8") && text.contains("52 e9"),
        "{text}"
    );
    db.drop_db().await;
}
