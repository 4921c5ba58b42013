-- Incident tickets (incidents): the incidents with their `YEAR/CODE/N` reference, the per-year and
-- per-domain counters that give N, the people in charge or following, the resolution lines, the
-- timeline of every change and the attachments' metadata (the files live under the data
-- directory). SQLite dialect; keep in step with ../postgres.

-- The running number of each (year, domain): incremented in the opening transaction, so that N
-- has neither gaps nor duplicates (a rolled-back opening gives its number back).
CREATE TABLE incident_counters (
    year   INTEGER NOT NULL,
    domain TEXT NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (year, domain)
);

CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY,
    -- `YEAR/CODE/N`, CODE being the domain's code at opening.
    reference       TEXT NOT NULL UNIQUE,
    year            INTEGER NOT NULL,
    number          INTEGER NOT NULL,
    domain          TEXT NOT NULL,
    -- Type / category (free text, set at opening or qualification).
    category        TEXT NOT NULL DEFAULT '',
    criticality     TEXT NOT NULL CHECK (criticality IN ('green', 'orange', 'red')),
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    comments        TEXT NOT NULL DEFAULT '',
    detection       TEXT NOT NULL CHECK (detection IN ('phone', 'mail', 'visual', 'alert')),
    -- The alert it was opened from (alerts are purged in time: no foreign key).
    alert_id        INTEGER,
    opener_id       INTEGER REFERENCES users (id),
    opener_login    TEXT NOT NULL,
    opened_at       TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'created' CHECK (state IN ('created', 'qualified',
                        'transferred', 'in_progress', 'resolved', 'closed', 'archived', 'deleted')),
    -- The opener wants to be told of the resolution (suivi).
    follow          BOOLEAN NOT NULL DEFAULT 0,
    -- First qualification, transfer or resolution line: the end of "time to acknowledge".
    acknowledged_at TEXT,
    resolved_at     TEXT,
    closed_at       TEXT,
    deleted_at      TEXT,
    updated_at      TEXT NOT NULL,
    UNIQUE (year, domain, number)
);
CREATE INDEX incidents_recent ON incidents (id) WHERE state <> 'deleted';
CREATE INDEX incidents_domain ON incidents (domain, id);
CREATE INDEX incidents_state ON incidents (state, id);
CREATE INDEX incidents_opened ON incidents (opened_at, id);
CREATE INDEX incidents_alert ON incidents (alert_id) WHERE alert_id IS NOT NULL;

-- The people of an incident: `assignee` (transferred to them, in charge) or `follower` (chosen
-- at opening to follow it). Both are mailed at resolution.
CREATE TABLE incident_people (
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    login       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('assignee', 'follower')),
    added_at    TEXT NOT NULL,
    added_by    TEXT,
    PRIMARY KEY (incident_id, user_id, kind)
);
CREATE INDEX incident_people_user ON incident_people (user_id, incident_id);

-- Resolution lines: what was done, how long it took; the final one resolves the incident.
CREATE TABLE incident_resolutions (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    text         TEXT NOT NULL,
    minutes      INTEGER NOT NULL CHECK (minutes >= 0),
    final        BOOLEAN NOT NULL,
    author_id    INTEGER REFERENCES users (id),
    author_login TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX incident_resolutions_incident ON incident_resolutions (incident_id, id);

-- The timeline: every change, resolution line, transfer and mail, with who and when; `details`
-- is a JSON object.
CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    actor_id    INTEGER,
    actor_login TEXT,
    kind        TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

-- Attachments' metadata; the bytes are in `{data_dir}/attachments/{storage_key}`.
CREATE TABLE incident_attachments (
    id            INTEGER PRIMARY KEY,
    incident_id   INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    storage_key   TEXT NOT NULL UNIQUE,
    uploaded_by   TEXT NOT NULL,
    uploaded_at   TEXT NOT NULL
);
CREATE INDEX incident_attachments_incident ON incident_attachments (incident_id, id);
