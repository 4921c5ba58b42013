-- The messages stored inside their batch's block, one JSON text per batch, instead of a row
-- each (in step with ../sqlite/0016_syslog_block_messages.sql and
-- ../sqlite-syslog/0003_syslog_block_messages.sql, which say why).
--
-- Ids stay: the n-th message of a block (from 0) has the id first_id + n. The messages stored
-- before are numbered again from 1 in their order (their old ids could have gaps), in blocks of
-- 1024. `messages` is text, not json: the hub writes and reads it whole, and PostgreSQL need not
-- check it at every insert.
CREATE TABLE syslog_blocks_0016 (
    first_id      BIGINT PRIMARY KEY,
    last_id       BIGINT NOT NULL,
    received_from TIMESTAMPTZ NOT NULL,
    received_to   TIMESTAMPTZ NOT NULL,
    hosts         TEXT,
    severities    INTEGER NOT NULL,
    facilities    INTEGER NOT NULL,
    bytes         BIGINT NOT NULL,
    -- [received_at, sender, transport, host, facility, severity, timestamp, app_name, proc_id,
    --  msg_id, structured_data, message, raw, variant, truncated] per message, times in UTC;
    -- `message` is a number when it is the end of `raw`: the byte where it starts there
    messages      TEXT NOT NULL
);

WITH numbered AS (
    SELECT ROW_NUMBER() OVER (ORDER BY id) - 1 AS n, s.* FROM syslog_messages AS s
), host_lists AS (
    SELECT k, COUNT(*) AS hosts_n, string_agg(host, chr(31)) AS list
    FROM (SELECT DISTINCT n / 1024 AS k, host FROM numbered) AS d
    GROUP BY k
)
INSERT INTO syslog_blocks_0016 (first_id, last_id, received_from, received_to, hosts, severities,
                                facilities, bytes, messages)
SELECT MIN(m.n) + 1, MAX(m.n) + 1, MIN(m.received_at), MAX(m.received_at),
       CASE WHEN l.hosts_n <= 64 AND length(l.list) <= 4096 THEN chr(31) || l.list || chr(31) END,
       COALESCE(SUM(DISTINCT 1 << m.severity), 0), COALESCE(SUM(DISTINCT 1 << m.facility), 0),
       0,
       json_agg(json_build_array(
           to_char(m.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           m.sender, m.transport, m.host, m.facility, m.severity,
           to_char(m.timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           m.app_name, m.proc_id, m.msg_id, m.structured_data::json, m.message, m.raw,
           m.variant, m.truncated) ORDER BY m.n)::text
FROM numbered AS m JOIN host_lists AS l ON l.k = m.n / 1024
GROUP BY m.n / 1024, l.hosts_n, l.list;

UPDATE syslog_blocks_0016 SET bytes = octet_length(messages);

DROP TABLE syslog_blocks;
ALTER TABLE syslog_blocks_0016 RENAME TO syslog_blocks;
ALTER INDEX syslog_blocks_0016_pkey RENAME TO syslog_blocks_pkey;
DROP TABLE syslog_messages;

-- The largest id a purge removed: when every block is gone, new ids start above it.
CREATE TABLE syslog_last_purged (
    last_id BIGINT NOT NULL
);
INSERT INTO syslog_last_purged (last_id) VALUES (0);

-- One row per message, for whoever queries the database by hand (the hub reads the blocks).
CREATE VIEW syslog_messages AS
SELECT b.first_id + j.n - 1 AS id,
       (j.m ->> 0)::timestamptz AS received_at, j.m ->> 1 AS sender, j.m ->> 2 AS transport,
       j.m ->> 3 AS host, (j.m ->> 4)::smallint AS facility, (j.m ->> 5)::smallint AS severity,
       (j.m ->> 6)::timestamptz AS timestamp, j.m ->> 7 AS app_name, j.m ->> 8 AS proc_id,
       j.m ->> 9 AS msg_id, j.m -> 10 AS structured_data,
       CASE WHEN json_typeof(j.m -> 11) = 'number'
            THEN convert_from(substring(convert_to(j.m ->> 12, 'UTF8') FROM (j.m ->> 11)::int + 1),
                              'UTF8')
            ELSE j.m ->> 11 END AS message,
       j.m ->> 12 AS raw, j.m ->> 13 AS variant, (j.m ->> 14)::boolean AS truncated
FROM syslog_blocks AS b
CROSS JOIN LATERAL json_array_elements(b.messages::json) WITH ORDINALITY AS j(m, n);
