-- Which domains a person belongs to (auth): a manager is told of their domains' critical alerts
-- and incidents and sees their incidents; on-call people are planned per domain. PostgreSQL
-- dialect; keep in step with ../sqlite.
CREATE TABLE user_domains (
    user_id BIGINT NOT NULL REFERENCES users (id),
    domain  TEXT NOT NULL,
    PRIMARY KEY (user_id, domain)
);
CREATE INDEX user_domains_by_domain ON user_domains (domain, user_id);
