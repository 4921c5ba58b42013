-- Sources defined in the console (sources module, issue 8 "Administration"), next to the ones of
-- the configuration file's `[[sources]]`. The URL is kept WITHOUT its password (for display); the
-- password is encrypted with AES-256-GCM under a key that is never in the database
-- (`VIGIE_SOURCES_KEY` or the key file), the source's name being the associated data. Nonce and
-- ciphertext are hex text. SQLite dialect; keep in step with ../postgres.
CREATE TABLE source_defs (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    url              TEXT NOT NULL,
    -- Both NULL when the URL needs no password.
    password_nonce   TEXT,
    password_cipher  TEXT,
    interval_seconds INTEGER NOT NULL CHECK (interval_seconds >= 1),
    enabled          BOOLEAN NOT NULL DEFAULT 1,
    domain           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT
);
