-- The console: people (users gain their identity, lockout and second-factor columns), menus and
-- per-user menu choices, browser sessions, login challenges, single-use account links, the
-- outbox (notify) and the append-only audit log (core). SQLite dialect; keep in step with
-- ../postgres.

ALTER TABLE users ADD COLUMN matricule TEXT;
ALTER TABLE users ADD COLUMN last_name TEXT;
ALTER TABLE users ADD COLUMN first_name TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN job_title TEXT;
ALTER TABLE users ADD COLUMN department TEXT;
ALTER TABLE users ADD COLUMN lang TEXT;
ALTER TABLE users ADD COLUMN timezone TEXT;
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN lock_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TEXT;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
ALTER TABLE users ADD COLUMN recovery_codes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN updated_at TEXT;
ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE users ADD COLUMN password_changed_at TEXT;
ALTER TABLE users ADD COLUMN last_login_at TEXT;
CREATE UNIQUE INDEX users_matricule ON users (matricule) WHERE matricule IS NOT NULL;

-- Role-wide security settings the administrator edits (a second factor required per role).
CREATE TABLE role_settings (
    role         TEXT PRIMARY KEY CHECK (role IN ('admin', 'operator', 'manager', 'oncall', 'user')),
    require_totp BOOLEAN NOT NULL DEFAULT 0
);

-- The menu tree. Built-in entries are seeded by the hub at start (codes fixed, labels editable);
-- the administrator adds links. `path` NULL: a group (no permission) or an entitlement to
-- actions (with a permission) that shows in the per-user choices but not in the navigation.
CREATE TABLE menus (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    parent_id  INTEGER REFERENCES menus (id) ON DELETE CASCADE,
    label_en   TEXT NOT NULL,
    label_fr   TEXT NOT NULL,
    path       TEXT,
    permission TEXT,
    position   INTEGER NOT NULL DEFAULT 0,
    builtin    BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Which roles get a menu unless the administrator decided otherwise for a user.
CREATE TABLE menu_roles (
    menu_id INTEGER NOT NULL REFERENCES menus (id) ON DELETE CASCADE,
    role    TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'manager', 'oncall', 'user')),
    PRIMARY KEY (menu_id, role)
);
-- The administrator's per-user choices, overriding the role's default for that menu.
CREATE TABLE user_menus (
    user_id INTEGER NOT NULL REFERENCES users (id),
    menu_id INTEGER NOT NULL REFERENCES menus (id) ON DELETE CASCADE,
    enabled BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, menu_id)
);

-- Browser sessions: the cookie holds a random id, the store only its digest.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    digest       TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    csrf         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ended_at     TEXT,
    end_reason   TEXT,
    ip           TEXT,
    user_agent   TEXT,
    flash        TEXT
);
CREATE INDEX sessions_open_by_user ON sessions (user_id) WHERE ended_at IS NULL;

-- A login between its steps: password checked, waiting for the second factor or for the answer
-- to "you already have an open session".
CREATE TABLE login_challenges (
    digest     TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    stage      TEXT NOT NULL CHECK (stage IN ('totp', 'confirm')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    ip         TEXT
);

-- Single-use links mailed to users (activation, password reset); digests only.
CREATE TABLE user_links (
    id         INTEGER PRIMARY KEY,
    digest     TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('activation', 'reset')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

-- Messages waiting to be delivered (notify). Written in the transaction of their cause.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('mail', 'sms', 'webhook')),
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    kind            TEXT NOT NULL,
    user_id         INTEGER REFERENCES users (id),
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    sent_at         TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_recipient ON outbox (recipient, id);

-- Every administrative action and state change: append-only (see the triggers).
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor_id     INTEGER,
    actor_login  TEXT,
    actor_role   TEXT,
    ip           TEXT,
    action       TEXT NOT NULL,
    target_kind  TEXT,
    target_id    TEXT,
    target_label TEXT,
    before_state TEXT,
    after_state  TEXT
);
CREATE INDEX audit_log_actor ON audit_log (actor_login, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
