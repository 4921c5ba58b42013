-- The syslog receiver's messages in their own SQLite file (`vigie-syslog.db` next to `vigie.db`):
-- SQLite lets one writer at a time into a file, and a syslog flood written into the hub's file
-- took turns with the alerts' writer. The same table as ../sqlite/0003_syslog.sql (which stays in
-- the hub's file, emptied at start by moving its rows here) and ../postgres/0003_syslog.sql.
--
-- Written in large batches by one task and purged from the old end (by age and by size), so the
-- id only grows: the table is an append-only B-tree and the viewer's "newest first" is the id
-- order. Few indexes on purpose (each one costs every insert): time for the ranges and the age
-- purge, host and severity (with the id, for "newest first" under the filter). Text, facility and
-- application filters scan, bounded by the others and the page size.
CREATE TABLE syslog_messages (
    id              INTEGER PRIMARY KEY,
    received_at     TEXT NOT NULL,
    sender          TEXT NOT NULL,
    transport       TEXT NOT NULL,
    host            TEXT NOT NULL,
    facility        INTEGER,
    severity        INTEGER,
    -- the time the sender gave (UTC), when it gave one that could be trusted
    timestamp       TEXT,
    app_name        TEXT,
    proc_id         TEXT,
    msg_id          TEXT,
    -- RFC 5424 structured data as a JSON object, NULL when there is none
    structured_data TEXT,
    message         TEXT NOT NULL,
    raw             TEXT NOT NULL,
    -- how the line was read: rfc3164, rfc5424 or unparsed
    variant         TEXT NOT NULL,
    truncated       BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX syslog_messages_received ON syslog_messages (received_at);
CREATE INDEX syslog_messages_host ON syslog_messages (host, id);
CREATE INDEX syslog_messages_severity ON syslog_messages (severity, id);
