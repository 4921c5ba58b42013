-- A summary of each stored batch instead of the three indexes of 0003 (in step with ../sqlite/0015 and
-- ../sqlite-syslog/0002_syslog_blocks.sql, which says why; PostgreSQL dialect).
CREATE TABLE syslog_blocks (
    first_id      BIGINT PRIMARY KEY,
    last_id       BIGINT NOT NULL,
    received_from TIMESTAMPTZ NOT NULL,
    received_to   TIMESTAMPTZ NOT NULL,
    hosts         TEXT,
    severities    INTEGER NOT NULL,
    facilities    INTEGER NOT NULL
);

WITH host_lists AS (
    SELECT k, COUNT(*) AS n, string_agg(host, chr(31)) AS list
    FROM (SELECT DISTINCT id / 1024 AS k, host FROM syslog_messages) AS d
    GROUP BY k
)
INSERT INTO syslog_blocks (first_id, last_id, received_from, received_to, hosts, severities, facilities)
SELECT MIN(m.id), MAX(m.id), MIN(m.received_at), MAX(m.received_at),
       CASE WHEN l.n <= 64 AND length(l.list) <= 4096 THEN chr(31) || l.list || chr(31) END,
       COALESCE(SUM(DISTINCT 1 << m.severity), 0), COALESCE(SUM(DISTINCT 1 << m.facility), 0)
FROM syslog_messages AS m JOIN host_lists AS l ON l.k = m.id / 1024
GROUP BY m.id / 1024, l.n, l.list;

DROP INDEX syslog_messages_received;
DROP INDEX syslog_messages_host;
DROP INDEX syslog_messages_severity;
