-- Automatic routing of alerts to the people on duty and escalation (oncall): routing rules,
-- the escalation state of each routed alert, the signed single-use acknowledgement links and
-- each user's notification preferences. SQLite dialect; keep in step with ../postgres.

-- A routing rule: alerts of `domain` at or above `min_severity`, narrowed by the optional
-- source, resource pattern (`*` any text), critical zone and time-of-day window (minutes after
-- midnight in the hub's time zone; start > end wraps over midnight), are routed; nobody
-- acknowledging within `escalation_minutes` tells the next index. A domain without any rule
-- gets the default rule of the configuration.
CREATE TABLE oncall_routing_rules (
    id                 INTEGER PRIMARY KEY,
    domain             TEXT NOT NULL,
    min_severity       INTEGER NOT NULL DEFAULT 2 CHECK (min_severity BETWEEN 0 AND 2),
    source             TEXT,
    resource_pattern   TEXT,
    critical_zone_only BOOLEAN NOT NULL DEFAULT 0,
    window_start       INTEGER CHECK (window_start BETWEEN 0 AND 1439),
    window_end         INTEGER CHECK (window_end BETWEEN 0 AND 1439),
    escalation_minutes INTEGER NOT NULL DEFAULT 15 CHECK (escalation_minutes BETWEEN 1 AND 1440),
    enabled            BOOLEAN NOT NULL DEFAULT 1,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    CHECK ((window_start IS NULL) = (window_end IS NULL))
);
CREATE INDEX oncall_routing_rules_domain ON oncall_routing_rules (domain);

-- The escalation of one alert. `round` grows when a cleared alert comes back and is routed
-- again; `step` counts the steps taken in the round (the de-duplication keys of the messages
-- carry both, so a step is never queued twice); `last_index` is the index told last,
-- `managers_told` whether the domain's managers were.
CREATE TABLE oncall_escalations (
    alert_id           INTEGER PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    domain             TEXT NOT NULL,
    rule_id            INTEGER REFERENCES oncall_routing_rules (id) ON DELETE SET NULL,
    round              INTEGER NOT NULL DEFAULT 1,
    step               INTEGER NOT NULL DEFAULT 0,
    last_index         INTEGER,
    managers_told      BOOLEAN NOT NULL DEFAULT 0,
    delay_minutes      INTEGER NOT NULL CHECK (delay_minutes >= 1),
    state              TEXT NOT NULL DEFAULT 'active'
                       CHECK (state IN ('active', 'acknowledged', 'exhausted', 'cancelled')),
    next_at            TEXT,
    started_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    acknowledged_by    INTEGER REFERENCES users (id),
    acknowledged_login TEXT,
    acknowledged_at    TEXT,
    -- How it was acknowledged: board, link, sms.
    acknowledged_via   TEXT
);
CREATE INDEX oncall_escalations_due ON oncall_escalations (next_at) WHERE state = 'active';

-- Who was told at each step (for the alert's page and the administrator).
CREATE TABLE oncall_escalation_steps (
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    round      INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    at         TEXT NOT NULL,
    -- duty (an index of the planning) or managers.
    target     TEXT NOT NULL CHECK (target IN ('duty', 'managers')),
    duty_index INTEGER,
    -- JSON array of {user_id, login, channels, held}.
    told       TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (alert_id, round, step)
);

-- A signed single-use acknowledgement link: only the digest of its random token is kept. The
-- short SMS code answers the gateway's callback ("ACK code").
CREATE TABLE oncall_ack_links (
    id         INTEGER PRIMARY KEY,
    digest     TEXT NOT NULL UNIQUE,
    sms_code   TEXT,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    round      INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE UNIQUE INDEX oncall_ack_links_code ON oncall_ack_links (sms_code) WHERE used_at IS NULL;
CREATE INDEX oncall_ack_links_alert ON oncall_ack_links (alert_id);

-- A user's notification preferences. No row: every channel they have the details for, no
-- quiet hours. Quiet hours are minutes after midnight in the user's time zone (start > end
-- wraps over midnight); critical alerts still go through.
CREATE TABLE oncall_notify_prefs (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    mail        BOOLEAN NOT NULL DEFAULT 1,
    sms         BOOLEAN NOT NULL DEFAULT 1,
    quiet_start INTEGER CHECK (quiet_start BETWEEN 0 AND 1439),
    quiet_end   INTEGER CHECK (quiet_end BETWEEN 0 AND 1439),
    updated_at  TEXT NOT NULL,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
