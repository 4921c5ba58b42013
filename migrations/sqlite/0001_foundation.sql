-- Foundation: users and API tokens (auth), alerts and their idempotency keys (alerts),
-- source watermarks (pipeline). SQLite dialect; keep in step with ../postgres.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'manager', 'oncall', 'user')),
    email         TEXT,
    display_name  TEXT,
    password_hash TEXT,
    must_change_password BOOLEAN NOT NULL DEFAULT 0,
    disabled      BOOLEAN NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    digest       TEXT NOT NULL UNIQUE,
    label        TEXT,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    source_ref      TEXT,
    fingerprint     TEXT NOT NULL,
    resource        TEXT NOT NULL,
    domain          TEXT NOT NULL,
    severity        INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 2),
    source_severity INTEGER,
    message         TEXT NOT NULL,
    critical_zone   BOOLEAN NOT NULL DEFAULT 0,
    tags            TEXT NOT NULL DEFAULT '[]',
    attributes      TEXT NOT NULL DEFAULT '{}',
    raw             TEXT,
    rules           TEXT NOT NULL DEFAULT '[]',
    state           TEXT NOT NULL DEFAULT 'new'
                    CHECK (state IN ('new', 'transferred', 'acknowledged', 'deferred', 'cleared', 'archived', 'deleted')),
    count           INTEGER NOT NULL DEFAULT 0,
    occurred_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    cleared_at      TEXT,
    -- when a cleared alert was raised again, and how often: flapping shows here
    reopened_at     TEXT,
    reopen_count    INTEGER NOT NULL DEFAULT 0,
    incident_id     INTEGER
);
-- At most one alert per fingerprint is a deduplication target: any state but archived or deleted.
CREATE UNIQUE INDEX alerts_live_fingerprint ON alerts (fingerprint)
    WHERE state NOT IN ('archived', 'deleted');
CREATE INDEX alerts_last_seen ON alerts (last_seen, id);
CREATE INDEX alerts_source_resource ON alerts (source, resource);

-- Every (source, source_ref) ever received, with the fingerprint it was qualified to and a digest
-- of its content: a record delivered again is recognised (even when it was absorbed as a
-- duplicate), and told apart from the same record updated by its source.
CREATE TABLE alert_refs (
    source      TEXT NOT NULL,
    source_ref  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    digest      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (source, source_ref)
) WITHOUT ROWID;

-- Where each periodic source has read up to; written in the transaction of the alerts it produced.
CREATE TABLE source_checkpoints (
    source     TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
