-- The messages stored inside their batch's block, one JSON text per batch, instead of a row
-- each. The same file in ../sqlite (the hub's file, 0016) and ../sqlite-syslog (the messages'
-- own file, 0003), in step with ../postgres/0016_syslog_block_messages.sql.
--
-- A row per message cost the storer fifteen bound values and a B-tree entry each: during a flood
-- SQLite's steps and the binding were most of the receiver's time, measured in
-- docs/syslog.md. Each batch is already one row of `syslog_blocks` (its id range, reception times,
-- hosts, severities and facilities, read by the filtered lists); that row now also holds the
-- batch's messages as one JSON array, written in one statement. The viewer reads the blocks that
-- can hold a match and filters their messages (modules/logs/src/repo.rs).
--
-- Ids stay: the n-th message of a block (from 0) has the id first_id + n, so a block's ids are
-- dense. The messages stored before are numbered again from 1 in their order (their old ids
-- could have gaps), in blocks of 1024.
CREATE TABLE syslog_blocks_0016 (
    -- the block's messages have the ids first_id ..= last_id, in order
    first_id      INTEGER PRIMARY KEY,
    last_id       INTEGER NOT NULL,
    -- the earliest and latest reception time among them
    received_from TEXT NOT NULL,
    received_to   TEXT NOT NULL,
    -- their distinct hosts, each followed by the unit separator (char 31) and the list starting
    -- with one; NULL when there are too many to list (any host may be there)
    hosts         TEXT,
    -- bit n set: a message of severity n (of facility n) is there
    severities    INTEGER NOT NULL,
    facilities    INTEGER NOT NULL,
    -- the size of `messages` in bytes (what the size retention counts)
    bytes         INTEGER NOT NULL,
    -- the messages, a JSON array by id, each an array: [received_at, sender, transport, host,
    -- facility, severity, timestamp, app_name, proc_id, msg_id, structured_data, message, raw,
    -- variant, truncated] (times in RFC 3339, UTC); `message` is a number when the message is
    -- the end of `raw`: the byte where it starts there (written once instead of twice)
    messages      TEXT NOT NULL
);

WITH numbered AS (
    SELECT ROW_NUMBER() OVER (ORDER BY id) - 1 AS n, * FROM syslog_messages
), host_lists AS (
    SELECT k, COUNT(*) AS hosts_n, group_concat(host, char(31)) AS list
    FROM (SELECT DISTINCT n / 1024 AS k, host FROM numbered)
    GROUP BY k
)
INSERT INTO syslog_blocks_0016 (first_id, last_id, received_from, received_to, hosts, severities,
                                facilities, bytes, messages)
SELECT MIN(m.n) + 1, MAX(m.n) + 1, MIN(m.received_at), MAX(m.received_at),
       CASE WHEN l.hosts_n <= 64 AND length(l.list) <= 4096 THEN char(31) || l.list || char(31) END,
       COALESCE(SUM(DISTINCT 1 << m.severity), 0), COALESCE(SUM(DISTINCT 1 << m.facility), 0),
       0,
       json_group_array(json_array(m.received_at, m.sender, m.transport, m.host, m.facility,
                                   m.severity, m.timestamp, m.app_name, m.proc_id, m.msg_id,
                                   json(m.structured_data), m.message, m.raw, m.variant,
                                   json(CASE WHEN m.truncated THEN 'true' ELSE 'false' END))
                        ORDER BY m.n)
FROM numbered AS m JOIN host_lists AS l ON l.k = m.n / 1024
GROUP BY m.n / 1024, l.hosts_n, l.list;

UPDATE syslog_blocks_0016 SET bytes = octet_length(messages);

DROP TABLE syslog_blocks;
ALTER TABLE syslog_blocks_0016 RENAME TO syslog_blocks;
DROP TABLE syslog_messages;

-- The largest id a purge removed: when every block is gone, new ids start above it (a live
-- tail's bound stays meaningful).
CREATE TABLE syslog_last_purged (
    last_id INTEGER NOT NULL
);
INSERT INTO syslog_last_purged (last_id) VALUES (0);

-- One row per message, for whoever queries the file by hand (the hub reads the blocks).
CREATE VIEW syslog_messages AS
SELECT b.first_id + j.key AS id,
       j.value ->> 0 AS received_at, j.value ->> 1 AS sender, j.value ->> 2 AS transport,
       j.value ->> 3 AS host, j.value ->> 4 AS facility, j.value ->> 5 AS severity,
       j.value ->> 6 AS timestamp, j.value ->> 7 AS app_name, j.value ->> 8 AS proc_id,
       j.value ->> 9 AS msg_id, j.value ->> 10 AS structured_data,
       CASE WHEN json_type(j.value, '$[11]') = 'integer'
            THEN CAST(substr(CAST(j.value ->> 12 AS BLOB), (j.value ->> 11) + 1) AS TEXT)
            ELSE j.value ->> 11 END AS message,
       j.value ->> 12 AS raw, j.value ->> 13 AS variant, j.value ->> 14 AS truncated
FROM syslog_blocks AS b, json_each(b.messages) AS j;
