-- On-call planning (oncall): teams per domain, explicit periods, weekly rotations and one-off
-- overrides (swap, holiday). Times are UTC. SQLite dialect; keep in step with ../postgres.

-- A named group of people of one domain, planned together (every member at the period's index).
CREATE TABLE oncall_teams (
    id         INTEGER PRIMARY KEY,
    domain     TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (domain, name)
);

CREATE TABLE oncall_team_members (
    team_id INTEGER NOT NULL REFERENCES oncall_teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (team_id, user_id)
);

-- An explicit period: one person or one team on duty for a domain from starts_at (included) to
-- ends_at (excluded), at an index (lowest is told first).
CREATE TABLE oncall_periods (
    id         INTEGER PRIMARY KEY,
    domain     TEXT NOT NULL,
    user_id    INTEGER REFERENCES users (id),
    team_id    INTEGER REFERENCES oncall_teams (id) ON DELETE CASCADE,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    idx        INTEGER NOT NULL CHECK (idx >= 1),
    note       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE INDEX oncall_periods_domain ON oncall_periods (domain, starts_at);

-- A rotation: its members take turns, one per `length_days` (7: weekly), the first one from
-- `anchor`; the handover happens at the anchor's local weekday and time in `time_zone`.
CREATE TABLE oncall_rotations (
    id          INTEGER PRIMARY KEY,
    domain      TEXT NOT NULL,
    name        TEXT NOT NULL,
    idx         INTEGER NOT NULL CHECK (idx >= 1),
    anchor      TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    length_days INTEGER NOT NULL DEFAULT 7 CHECK (length_days >= 1),
    -- The rotation stops here (excluded); NULL: it goes on.
    ends_at     TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX oncall_rotations_domain ON oncall_rotations (domain);

-- The members of a rotation in their turn order (position 0 first).
CREATE TABLE oncall_rotation_members (
    rotation_id INTEGER NOT NULL REFERENCES oncall_rotations (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (rotation_id, position)
);

-- A one-off change: from starts_at to ends_at, `replaced_id` is off duty for the domain and
-- `replacement_id` takes their place at their index (a swap), or nobody does (a holiday).
CREATE TABLE oncall_overrides (
    id             INTEGER PRIMARY KEY,
    domain         TEXT NOT NULL,
    starts_at      TEXT NOT NULL,
    ends_at        TEXT NOT NULL,
    replaced_id    INTEGER NOT NULL REFERENCES users (id),
    replacement_id INTEGER REFERENCES users (id),
    reason         TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL
);
CREATE INDEX oncall_overrides_domain ON oncall_overrides (domain, starts_at);
