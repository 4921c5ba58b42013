-- Database sources (sources module): each polled source's health line, the administrators'
-- settings of each source, the equipment the sources report, and the hub's own backup table with
-- the jobs expected to report. SQLite dialect; keep in step with ../postgres.
-- (The watermarks are in `source_checkpoints`, written with the alerts by the pipeline.)

-- One line per source, rewritten by its poller when something changes (and at most every minute
-- otherwise), so the line survives a restart.
CREATE TABLE source_health (
    source           TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('starting', 'ok', 'failing', 'disabled', 'misconfigured')),
    interval_seconds INTEGER NOT NULL,
    last_poll_at     TEXT,
    last_success_at  TEXT,
    last_error       TEXT,
    last_error_class TEXT,
    last_error_at    TEXT,
    failing_since    TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    rows_read        INTEGER NOT NULL DEFAULT 0,
    records          INTEGER NOT NULL DEFAULT 0,
    last_poll_ms     INTEGER,
    backlog          BOOLEAN NOT NULL DEFAULT 0,
    newest_row_at    TEXT,
    alert_raised     BOOLEAN NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL
);

-- A source's connector settings (mapping, query, links), a JSON object; the connection itself
-- (URL, interval, enabled) is in the configuration file.
CREATE TABLE source_settings (
    source     TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT
);

-- Computers, monitors and services the sources know, for the supervision views.
CREATE TABLE equipment (
    id                INTEGER PRIMARY KEY,
    source            TEXT NOT NULL,
    source_ref        TEXT NOT NULL,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    domain            TEXT,
    status            TEXT,
    attributes        TEXT NOT NULL DEFAULT '{}',
    removed           BOOLEAN NOT NULL DEFAULT 0,
    source_updated_at TEXT,
    first_seen        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (source, source_ref)
);
CREATE INDEX equipment_name ON equipment (name);

-- What backup scripts report after each run (`vigie backup report`, `POST /api/v1/backups`).
-- A new row is an event; the backup watcher turns rows into alerts, in id order, with its
-- watermark in `source_checkpoints`.
CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    job         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    message     TEXT,
    started_at  TEXT,
    ended_at    TEXT,
    received_at TEXT NOT NULL,
    reported_by TEXT
);
CREATE INDEX backups_job ON backups (job, received_at);

-- Jobs expected to report on a schedule: a run not reported by its deadline raises "backup missing".
CREATE TABLE backup_jobs (
    job              TEXT PRIMARY KEY,
    schedule         TEXT NOT NULL,
    deadline_seconds INTEGER NOT NULL CHECK (deadline_seconds > 0),
    enabled          BOOLEAN NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
