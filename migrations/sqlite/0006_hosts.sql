-- Hosts watched by Vigie's own agent (hosts module): the hosts, their agents' tokens, the ids of
-- the reports already stored (replays are idempotent), the metric series and the unavailability
-- periods. SQLite dialect; keep in step with ../postgres.

-- One line per host, registered by `vigie agent token --host NAME`.
CREATE TABLE hosts (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    registered_at   TEXT NOT NULL,
    last_seen       TEXT,
    last_report_id  TEXT,
    -- The interval announced by the last report: the unreachable watcher's clock.
    interval_secs   REAL,
    -- The agent's inventory, a JSON object (sent at start and then now and then).
    inventory       TEXT,
    -- The key figures of the last report, a JSON object, for the hosts list.
    figures         TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'up', 'unreachable')),
    -- Per threshold: consecutive reports over it and whether its alert is raised (JSON object).
    threshold_state TEXT NOT NULL DEFAULT '{}'
);

-- Agents' tokens: only the digest is kept.
CREATE TABLE host_tokens (
    id         INTEGER PRIMARY KEY,
    host_id    INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    digest     TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- The id of every report stored, so that a replayed report is stored once.
CREATE TABLE host_reports (
    host_id      INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    report_id    TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (host_id, report_id)
);

-- One value of one metric (`cpu`, `memory`, `load1`, `fs:/`, `net:eth0:rx`, …) at one time.
CREATE TABLE host_metrics (
    host_id INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    metric  TEXT NOT NULL,
    at      TEXT NOT NULL,
    value   REAL NOT NULL
);
CREATE INDEX host_metrics_series ON host_metrics (host_id, metric, at);

-- Unavailability periods: opened when a host misses its reports, closed when it reports again.
CREATE TABLE host_downtimes (
    id         INTEGER PRIMARY KEY,
    host_id    INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    started_at TEXT NOT NULL,
    ended_at   TEXT
);
CREATE INDEX host_downtimes_host ON host_downtimes (host_id, started_at);

-- Roll-ups of host_metrics: per step (300 s, 3600 s) and bucket start, the average and the
-- maximum. Raw rows are kept a day, 5-minute roll-ups a month, hourly ones a year (defaults).
CREATE TABLE host_metric_rollups (
    host_id INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    metric  TEXT NOT NULL,
    step    INTEGER NOT NULL,
    at      TEXT NOT NULL,
    avg     REAL NOT NULL,
    max     REAL NOT NULL,
    samples INTEGER NOT NULL,
    PRIMARY KEY (host_id, metric, step, at)
);

-- Per step, the time up to which buckets are rolled up.
CREATE TABLE host_rollup_marks (
    step       INTEGER PRIMARY KEY,
    done_until TEXT NOT NULL
);
