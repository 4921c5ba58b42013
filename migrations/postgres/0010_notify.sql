-- Notification delivery (notify): the outbox gains a de-duplication key, the worker's claim
-- (lease) and the stable Message-ID; the administrator's message templates. PostgreSQL dialect;
-- keep in step with ../sqlite.

-- Enqueuing twice with the same key queues the message once (NULLs are distinct).
ALTER TABLE outbox ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX outbox_dedupe_key ON outbox (dedupe_key);
-- A worker claims a row (state 'sending') until lease_until; an expired lease is claimable again.
ALTER TABLE outbox ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
-- The Message-ID every attempt of a mail carries, so the receiving side can tell a repeat.
ALTER TABLE outbox ADD COLUMN message_id TEXT;
-- When the message was dead-lettered.
ALTER TABLE outbox ADD COLUMN dead_at TIMESTAMPTZ;
CREATE INDEX outbox_leased ON outbox (lease_until, id) WHERE state = 'sending';
CREATE INDEX outbox_state ON outbox (state, id);

-- Message templates the administrator overrides (else the built-in defaults apply).
CREATE TABLE notify_templates (
    kind       TEXT NOT NULL,
    channel    TEXT NOT NULL CHECK (channel IN ('mail', 'sms', 'webhook')),
    lang       TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    body_text  TEXT NOT NULL,
    body_html  TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by BIGINT REFERENCES users (id),
    PRIMARY KEY (kind, channel, lang)
);
