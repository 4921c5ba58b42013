-- A summary of each stored batch instead of the three indexes of 0001 (in step with
-- ../postgres/0015_syslog_blocks.sql and ../sqlite/0015_syslog_blocks.sql).
--
-- Each index cost every insert its own B-tree entry, and the host index worst of all: a batch
-- from 50 hosts dirtied 50 of its pages, each written whole to the log at every commit (a third of
-- the storer's time during a flood). A batch's messages have consecutive ids, so one row per batch
-- says what they hold: their id range, their reception times, their hosts, severities and
-- facilities. A filtered list reads the blocks that can hold a match, newest first, then only
-- their id ranges of the messages table (see modules/logs/src/repo.rs). The purges find their id
-- bounds here too.
CREATE TABLE syslog_blocks (
    -- the block's messages are those with first_id <= id <= last_id
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
    facilities    INTEGER NOT NULL
);

-- The messages already stored, in blocks of 1024 ids.
WITH host_lists AS (
    SELECT k, COUNT(*) AS n, group_concat(host, char(31)) AS list
    FROM (SELECT DISTINCT id / 1024 AS k, host FROM syslog_messages)
    GROUP BY k
)
INSERT INTO syslog_blocks (first_id, last_id, received_from, received_to, hosts, severities, facilities)
SELECT MIN(m.id), MAX(m.id), MIN(m.received_at), MAX(m.received_at),
       CASE WHEN l.n <= 64 AND length(l.list) <= 4096 THEN char(31) || l.list || char(31) END,
       COALESCE(SUM(DISTINCT 1 << m.severity), 0), COALESCE(SUM(DISTINCT 1 << m.facility), 0)
FROM syslog_messages AS m JOIN host_lists AS l ON l.k = m.id / 1024
GROUP BY m.id / 1024, l.n, l.list;

DROP INDEX syslog_messages_received;
DROP INDEX syslog_messages_host;
DROP INDEX syslog_messages_severity;
