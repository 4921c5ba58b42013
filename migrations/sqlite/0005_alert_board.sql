-- The alert board: operators' actions on alerts (with their history), deferral, the people an
-- alert was transferred to, and the indexes of the board's order and of the live stream's resume.
-- SQLite dialect; keep in step with ../postgres.

ALTER TABLE alerts ADD COLUMN deferred_until TEXT;
-- The state a deferred alert goes back to when its deferral is due.
ALTER TABLE alerts ADD COLUMN state_before_defer TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_at TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
-- Flapping: reopens counted from flap_since; past the window the count starts over.
ALTER TABLE alerts ADD COLUMN flap_since TEXT;
ALTER TABLE alerts ADD COLUMN flap_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN flapping BOOLEAN NOT NULL DEFAULT 0;
-- Set while a maintenance window covers the alert: stored, but off the board and unnotified.
ALTER TABLE alerts ADD COLUMN in_maintenance BOOLEAN NOT NULL DEFAULT 0;

-- Planned work: alerts of a domain and/or resources matching a pattern (`*` wildcards) are kept
-- off the board from starts_at to ends_at, once, or every day or week at the same hours.
CREATE TABLE maintenance_windows (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    domain           TEXT,
    resource_pattern TEXT,
    starts_at        TEXT NOT NULL,
    ends_at          TEXT NOT NULL,
    recurrence       TEXT NOT NULL DEFAULT 'none' CHECK (recurrence IN ('none', 'daily', 'weekly')),
    created_by       TEXT,
    created_at       TEXT NOT NULL
);

-- Every action taken on an alert: who, when, from which state to which.
CREATE TABLE alert_actions (
    id         INTEGER PRIMARY KEY,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    actor_id   INTEGER,
    actor_login TEXT,
    action     TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    detail     TEXT
);
CREATE INDEX alert_actions_alert ON alert_actions (alert_id, id);

-- The people an alert was transferred to.
CREATE TABLE alert_recipients (
    alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (id),
    at       TEXT NOT NULL,
    PRIMARY KEY (alert_id, user_id)
);

-- The board: open alerts, most critical first, then most recent.
CREATE INDEX alerts_board ON alerts (severity, last_seen, id)
    WHERE state IN ('new', 'transferred', 'acknowledged') AND NOT in_maintenance;
-- The board of one domain, and the counts above the board (read from the index alone).
CREATE INDEX alerts_board_domain ON alerts (domain, severity, last_seen, id)
    WHERE state IN ('new', 'transferred', 'acknowledged') AND NOT in_maintenance;
CREATE INDEX alerts_maintenance ON alerts (id) WHERE in_maintenance;
-- The live stream's resume (Last-Event-ID) and the deferral wake-up.
CREATE INDEX alerts_updated ON alerts (updated_at, id);
-- The search by resource (an alert's page links to the others of its resource).
CREATE INDEX alerts_resource ON alerts (resource, last_seen, id);
CREATE INDEX alerts_deferred ON alerts (deferred_until) WHERE state = 'deferred';
CREATE INDEX alert_refs_received ON alert_refs (received_at);
