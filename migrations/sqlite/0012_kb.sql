-- Knowledge base (kb module): articles written by hand or from a closed incident, their tags, the
-- incidents they came from, and the full-text index. SQLite dialect; keep in step with ../postgres.
--
-- `folded_title` and `folded_body` are accent-folded, lower-cased copies computed by the kb crate
-- (é→e, ç→c, œ→oe…; the body joins symptoms, cause, resolution and tags): both backends index the
-- same text, so a search behaves the same on SQLite and PostgreSQL.
CREATE TABLE kb_articles (
    id           INTEGER PRIMARY KEY,
    title        TEXT NOT NULL,
    symptoms     TEXT NOT NULL DEFAULT '',
    cause        TEXT NOT NULL DEFAULT '',
    resolution   TEXT NOT NULL,
    domain       TEXT,
    -- The author: the user's id while the account exists, the login kept for display.
    author_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    author       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT,
    folded_title TEXT NOT NULL,
    folded_body  TEXT NOT NULL
);
CREATE INDEX kb_articles_updated ON kb_articles (updated_at, id);
CREATE INDEX kb_articles_domain ON kb_articles (domain);

-- One line per tag of an article (lower-case words, compared exactly by the tag filter).
CREATE TABLE kb_article_tags (
    article_id INTEGER NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    PRIMARY KEY (article_id, tag)
);
CREATE INDEX kb_article_tags_tag ON kb_article_tags (tag, article_id);

-- The incidents an article came from. No foreign key: the incidents table belongs to another
-- module (and archived incidents leave the live tables); the reference is kept for display.
CREATE TABLE kb_article_incidents (
    article_id  INTEGER NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
    incident_id INTEGER NOT NULL,
    reference   TEXT,
    PRIMARY KEY (article_id, incident_id)
);
CREATE INDEX kb_article_incidents_incident ON kb_article_incidents (incident_id);

-- Full-text index over the folded copies (external content: the text is not stored twice), kept
-- in step by triggers so that every write path, in its own transaction, updates it.
CREATE VIRTUAL TABLE kb_fts USING fts5 (
    folded_title,
    folded_body,
    content = 'kb_articles',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER kb_articles_fts_insert AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_fts (rowid, folded_title, folded_body)
        VALUES (new.id, new.folded_title, new.folded_body);
END;

CREATE TRIGGER kb_articles_fts_delete AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_fts (kb_fts, rowid, folded_title, folded_body)
        VALUES ('delete', old.id, old.folded_title, old.folded_body);
END;

CREATE TRIGGER kb_articles_fts_update AFTER UPDATE OF folded_title, folded_body ON kb_articles BEGIN
    INSERT INTO kb_fts (kb_fts, rowid, folded_title, folded_body)
        VALUES ('delete', old.id, old.folded_title, old.folded_body);
    INSERT INTO kb_fts (rowid, folded_title, folded_body)
        VALUES (new.id, new.folded_title, new.folded_body);
END;
