-- Which domains a person belongs to (auth): a manager is told of their domains' critical alerts
-- and incidents and sees their incidents; on-call people are planned per domain. SQLite dialect;
-- keep in step with ../postgres.
CREATE TABLE user_domains (
    user_id INTEGER NOT NULL REFERENCES users (id),
    domain  TEXT NOT NULL,
    PRIMARY KEY (user_id, domain)
);
CREATE INDEX user_domains_by_domain ON user_domains (domain, user_id);
