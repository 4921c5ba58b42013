-- The host alerts (threshold raised or cleared, host unreachable or back) decided in a report's
-- or the watcher's transaction, kept until the pipeline has taken them (hosts module): a
-- pipeline that refuses them (full, stopping) delays them, never loses them. SQLite dialect; keep in
-- step with ../postgres.
CREATE TABLE host_alert_outbox (
    id       INTEGER PRIMARY KEY,
    host     TEXT NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('raise', 'clear', 'down', 'back')),
    -- The threshold's key, resource and wording (empty for down/back).
    key      TEXT NOT NULL DEFAULT '',
    resource TEXT NOT NULL,
    what     TEXT NOT NULL DEFAULT '',
    value    REAL NOT NULL DEFAULT 0,
    above    REAL NOT NULL DEFAULT 0,
    margin   REAL NOT NULL DEFAULT 0,
    reports  INTEGER NOT NULL DEFAULT 1,
    level    INTEGER NOT NULL DEFAULT 2,
    at       TEXT NOT NULL
);
