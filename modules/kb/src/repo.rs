//! The articles in the store: validation, writes (one transaction each, with their audit entry),
//! reads, search and suggestions on either backend.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::audit::{self, Actor, Entry};
use vigie_core::role::{Permission, PermissionSet};
use vigie_core::store::{Backend, Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};

use crate::error::{KbError, Problem};
use crate::text::{self, Combine};

pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 20_000;
pub const DOMAIN_MAX: usize = 40;
pub const TAG_MAX: usize = 40;
pub const TAGS_MAX: usize = 20;
pub const REFERENCE_MAX: usize = 100;
/// Longest search text accepted.
pub const QUERY_MAX: usize = 200;
/// Words of a search, at most.
const SEARCH_TERMS_MAX: usize = 16;
/// Words of a suggestion's text, at most (the first significant ones).
const SUGGEST_TERMS_MAX: usize = 32;
/// Hits in one answer, at most.
pub const LIMIT_MAX: i64 = 100;

/// An article to write: typed in the form, sent to the API, or prefilled from a closed incident
/// (the incidents module fills one and hands it to [`crate::new_article_page`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub title: String,
    #[serde(default)]
    pub symptoms: String,
    #[serde(default)]
    pub cause: String,
    pub resolution: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The incident the article comes from, if any.
    #[serde(default)]
    pub incident_id: Option<i64>,
    /// Its reference (`YEAR/DOMAIN/N`), kept for display.
    #[serde(default)]
    pub incident_reference: Option<String>,
}

/// Splits a typed list of tags (`vpn, réseau; wifi`) into tags.
pub fn parse_tags(text: &str) -> Vec<String> {
    text.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A draft checked and normalised: trimmed, tags lower-cased and unique, empty domain dropped.
#[derive(Clone, Debug)]
struct Clean {
    title: String,
    symptoms: String,
    cause: String,
    resolution: String,
    domain: Option<String>,
    tags: Vec<String>,
    incident: Option<(i64, Option<String>)>,
}

fn one_line_ok(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn long_text_ok(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Checks a draft; every problem names its field.
pub fn check(draft: &Draft) -> Result<(), Vec<Problem>> {
    clean(draft).map(drop)
}

fn clean(draft: &Draft) -> Result<Clean, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |field, key, message| {
        problems.push(Problem {
            field,
            key,
            message,
        })
    };
    let title = draft.title.trim().to_owned();
    if title.is_empty() {
        problem("title", "kb.problems.required", "is required");
    } else if title.chars().count() > TITLE_MAX || !one_line_ok(&title) {
        problem(
            "title",
            "kb.problems.title",
            "must be one line of at most 200 characters",
        );
    }
    let resolution = draft.resolution.trim().to_owned();
    for (field, value) in [
        ("symptoms", draft.symptoms.trim()),
        ("cause", draft.cause.trim()),
        ("resolution", resolution.as_str()),
    ] {
        if value.chars().count() > TEXT_MAX || !long_text_ok(value) {
            problem(
                field,
                "kb.problems.text",
                "must be text of at most 20000 characters",
            );
        }
    }
    if resolution.is_empty() {
        problem("resolution", "kb.problems.required", "is required");
    }
    let domain = draft
        .domain
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    if let Some(d) = &domain
        && (d.len() > DOMAIN_MAX
            || !d
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
    {
        problem(
            "domain",
            "kb.problems.domain",
            "must be a domain id (a-z, 0-9, _ or -, at most 40)",
        );
    }
    let mut tags: Vec<String> = Vec::new();
    let mut tags_bad = false;
    for tag in &draft.tags {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() {
            continue;
        }
        if tag.chars().count() > TAG_MAX || !one_line_ok(&tag) || tag.contains([',', ';']) {
            tags_bad = true;
        } else if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags_bad || tags.len() > TAGS_MAX {
        problem(
            "tags",
            "kb.problems.tags",
            "at most 20 tags of at most 40 characters, without , or ;",
        );
    }
    let reference = draft
        .incident_reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if reference
        .as_ref()
        .is_some_and(|r| r.chars().count() > REFERENCE_MAX || !one_line_ok(r))
    {
        problem(
            "incident_reference",
            "kb.problems.reference",
            "must be one line of at most 100 characters",
        );
    }
    if draft.incident_id.is_some_and(|id| id <= 0) {
        problem(
            "incident_id",
            "kb.problems.incident",
            "must be a positive incident id",
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Clean {
        title,
        symptoms: draft.symptoms.trim().to_owned(),
        cause: draft.cause.trim().to_owned(),
        resolution,
        domain,
        tags,
        incident: draft.incident_id.map(|id| (id, reference)),
    })
}

impl Clean {
    fn folded_title(&self) -> String {
        text::fold(&self.title)
    }

    /// Everything but the title, folded: what the body column of the index holds.
    fn folded_body(&self) -> String {
        text::fold(&format!(
            "{}\n{}\n{}\n{}",
            self.symptoms,
            self.cause,
            self.resolution,
            self.tags.join(" ")
        ))
    }

    fn audit_view(&self) -> serde_json::Value {
        json!({
            "title": self.title,
            "domain": self.domain,
            "tags": self.tags,
            "incident_id": self.incident.as_ref().map(|i| i.0),
        })
    }
}

/// An incident an article came from.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, PartialEq, Eq)]
pub struct IncidentLink {
    pub incident_id: i64,
    pub reference: Option<String>,
}

/// A stored article.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Article {
    pub id: i64,
    pub title: String,
    pub symptoms: String,
    pub cause: String,
    pub resolution: String,
    pub domain: Option<String>,
    #[sqlx(skip)]
    pub tags: Vec<String>,
    pub author_id: Option<i64>,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
    #[sqlx(skip)]
    pub incidents: Vec<IncidentLink>,
}

/// Whether this user may edit or delete the article: its author, or whoever manages incidents
/// (operators).
pub fn may_change(article: &Article, user_id: i64, permissions: &PermissionSet) -> bool {
    permissions.contains(Permission::IncidentsManage)
        || (article.author_id == Some(user_id) && permissions.contains(Permission::KnowledgeBase))
}

/// What narrows a search or the recent list.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Filters {
    pub domain: Option<String>,
    pub tag: Option<String>,
}

impl Filters {
    fn domain(&self) -> Option<String> {
        self.domain
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
    }

    fn tag(&self) -> Option<String> {
        self.tag
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
    }
}

/// One article found.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    pub id: i64,
    pub title: String,
    pub domain: Option<String>,
    pub tags: Vec<String>,
    /// A short excerpt of the article around the first word found.
    pub snippet: String,
    /// The excerpt in pieces, the words found marked (`hit`), for highlighting.
    pub pieces: Vec<text::Piece>,
    /// Higher is closer (bm25 on SQLite, ts_rank on PostgreSQL: compare within one answer only).
    pub score: f64,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct HitRow {
    id: i64,
    title: String,
    domain: Option<String>,
    symptoms: String,
    cause: String,
    resolution: String,
    tags: Option<String>,
    updated_at: DateTime<Utc>,
    score: f64,
}

impl HitRow {
    fn into_hit(self, terms: &[String]) -> Hit {
        let body = [&self.symptoms, &self.cause, &self.resolution]
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" — ");
        let pieces = text::snippet(&body, terms);
        Hit {
            id: self.id,
            title: self.title,
            domain: self.domain,
            tags: split_tags(self.tags),
            snippet: pieces.iter().map(|p| p.text.as_str()).collect(),
            pieces,
            score: self.score,
            updated_at: self.updated_at,
        }
    }
}

fn split_tags(tags: Option<String>) -> Vec<String> {
    let mut tags: Vec<String> = tags
        .unwrap_or_default()
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

macro_rules! hit_columns {
    () => {
        "a.id, a.title, a.domain, a.symptoms, a.cause, a.resolution, a.updated_at"
    };
}

/// The filters' conditions, the same on both backends (`$2` domain, `$3` tag).
macro_rules! filter_conditions {
    () => {
        " AND ($2 IS NULL OR a.domain = $2)
          AND ($3 IS NULL OR EXISTS (SELECT 1 FROM kb_article_tags ft
                                     WHERE ft.article_id = a.id AND ft.tag = $3))"
    };
}

const SQLITE_SEARCH: &str = concat!(
    "SELECT ",
    hit_columns!(),
    ", (SELECT group_concat(t.tag, ',') FROM kb_article_tags t WHERE t.article_id = a.id) AS tags,
       -bm25(kb_fts, 10.0, 1.0) AS score
     FROM kb_fts JOIN kb_articles a ON a.id = kb_fts.rowid
     WHERE kb_fts MATCH $1",
    filter_conditions!(),
    " ORDER BY score DESC, a.id DESC LIMIT $4"
);

const POSTGRES_SEARCH: &str = concat!(
    "SELECT ",
    hit_columns!(),
    ", (SELECT string_agg(t.tag, ',') FROM kb_article_tags t WHERE t.article_id = a.id) AS tags,
       ts_rank('{0.05, 0.1, 0.2, 1.0}', a.search, q)::float8 AS score
     FROM kb_articles a, to_tsquery('french', $1) q
     WHERE a.search @@ q",
    " AND ($2::text IS NULL OR a.domain = $2)
      AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM kb_article_tags ft
                                       WHERE ft.article_id = a.id AND ft.tag = $3))",
    " ORDER BY score DESC, a.id DESC LIMIT $4"
);

const SQLITE_RECENT: &str = concat!(
    "SELECT ",
    hit_columns!(),
    ", (SELECT group_concat(t.tag, ',') FROM kb_article_tags t WHERE t.article_id = a.id) AS tags,
       0.0 AS score
     FROM kb_articles a WHERE $1 = $1",
    filter_conditions!(),
    " ORDER BY a.updated_at DESC, a.id DESC LIMIT $4"
);

const POSTGRES_RECENT: &str = concat!(
    "SELECT ",
    hit_columns!(),
    ", (SELECT string_agg(t.tag, ',') FROM kb_article_tags t WHERE t.article_id = a.id) AS tags,
       0.0::float8 AS score
     FROM kb_articles a WHERE $1::text = $1::text",
    " AND ($2::text IS NULL OR a.domain = $2)
      AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM kb_article_tags ft
                                       WHERE ft.article_id = a.id AND ft.tag = $3))",
    " ORDER BY a.updated_at DESC, a.id DESC LIMIT $4"
);

async fn fetch_hits(
    store: &Store,
    sql: &'static str,
    query: &str,
    filters: &Filters,
    limit: i64,
    terms: &[String],
) -> Result<Vec<Hit>, StoreError> {
    let rows: Vec<HitRow> = on_pool!(store, pool => sqlx::query_as::<_, HitRow>(sql)
        .bind(query)
        .bind(filters.domain())
        .bind(filters.tag())
        .bind(limit.clamp(1, LIMIT_MAX))
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(|r| r.into_hit(terms)).collect())
}

/// Checks a search text: not empty, not too long, with at least one word.
pub fn check_query(query: &str) -> Result<Vec<String>, KbError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(KbError::invalid(
            "q",
            "kb.problems.query_empty",
            "is required",
        ));
    }
    if query.chars().count() > QUERY_MAX {
        return Err(KbError::invalid(
            "q",
            "kb.problems.query_long",
            "must have at most 200 characters",
        ));
    }
    let terms = text::search_terms(query, SEARCH_TERMS_MAX);
    if terms.is_empty() {
        return Err(KbError::invalid(
            "q",
            "kb.problems.query_words",
            "must contain at least one word",
        ));
    }
    Ok(terms)
}

/// The articles holding every word of `query` (accents and case ignored, the last word as a
/// prefix), best first; a title match weighs more than a body match.
pub async fn search(
    store: &Store,
    query: &str,
    filters: &Filters,
    limit: i64,
) -> Result<Vec<Hit>, KbError> {
    let terms = check_query(query)?;
    let (sql, expression) = match store.backend() {
        Backend::Sqlite => (
            SQLITE_SEARCH,
            text::fts5_query(&terms, Combine::AllLastPrefix),
        ),
        Backend::Postgres => (
            POSTGRES_SEARCH,
            text::tsquery(&terms, Combine::AllLastPrefix),
        ),
    };
    Ok(fetch_hits(store, sql, &expression, filters, limit, &terms).await?)
}

/// The articles closest to a free text (a new incident's title and description): any of its
/// significant words, stop words left out, best first. Nothing when the text has no such word.
pub async fn suggest(
    store: &Store,
    text_in: &str,
    domain: Option<&str>,
    limit: i64,
) -> Result<Vec<Hit>, KbError> {
    let terms = text::suggest_terms(text_in, SUGGEST_TERMS_MAX);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let (sql, expression) = match store.backend() {
        Backend::Sqlite => (SQLITE_SEARCH, text::fts5_query(&terms, Combine::Any)),
        Backend::Postgres => (POSTGRES_SEARCH, text::tsquery(&terms, Combine::Any)),
    };
    let filters = Filters {
        domain: domain.map(str::to_owned),
        tag: None,
    };
    Ok(fetch_hits(store, sql, &expression, &filters, limit, &terms).await?)
}

/// The latest written or changed articles.
pub async fn recent(store: &Store, filters: &Filters, limit: i64) -> Result<Vec<Hit>, KbError> {
    let sql = match store.backend() {
        Backend::Sqlite => SQLITE_RECENT,
        Backend::Postgres => POSTGRES_RECENT,
    };
    Ok(fetch_hits(store, sql, "", filters, limit, &[]).await?)
}

/// One article with its tags and incidents.
pub async fn get(store: &Store, id: i64) -> Result<Option<Article>, KbError> {
    let article: Option<Article> = on_pool!(store, pool => sqlx::query_as::<_, Article>(
        "SELECT id, title, symptoms, cause, resolution, domain, author_id, author, created_at,
                updated_at, updated_by
         FROM kb_articles WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let Some(mut article) = article else {
        return Ok(None);
    };
    article.tags = on_pool!(store, pool => sqlx::query_scalar::<_, String>(
        "SELECT tag FROM kb_article_tags WHERE article_id = $1 ORDER BY tag",
    )
    .bind(id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    article.incidents = on_pool!(store, pool => sqlx::query_as::<_, IncidentLink>(
        "SELECT incident_id, reference FROM kb_article_incidents WHERE article_id = $1
         ORDER BY incident_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(Some(article))
}

/// The articles that came from an incident (for the incident's page).
pub async fn for_incident(store: &Store, incident_id: i64) -> Result<Vec<(i64, String)>, KbError> {
    let rows: Vec<(i64, String)> = on_pool!(store, pool => sqlx::query_as::<_, (i64, String)>(
        "SELECT a.id, a.title FROM kb_article_incidents i JOIN kb_articles a ON a.id = i.article_id
         WHERE i.incident_id = $1 ORDER BY a.id",
    )
    .bind(incident_id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(rows)
}

/// The domains and tags articles use, for the filters.
pub async fn facets(store: &Store) -> Result<(Vec<String>, Vec<String>), KbError> {
    let domains = on_pool!(store, pool => sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT domain FROM kb_articles WHERE domain IS NOT NULL ORDER BY domain",
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    let tags = on_pool!(store, pool => sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT tag FROM kb_article_tags ORDER BY tag LIMIT 200",
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok((domains, tags))
}

async fn write_tags_and_link(tx: &mut StoreTx, id: i64, clean: &Clean) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM kb_article_tags WHERE article_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(drop))?;
    for tag in &clean.tags {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO kb_article_tags (article_id, tag) VALUES ($1, $2)",
        )
        .bind(id)
        .bind(tag)
        .execute(&mut *conn)
        .await
        .map(drop))?;
    }
    if let Some((incident_id, reference)) = &clean.incident {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO kb_article_incidents (article_id, incident_id, reference)
             VALUES ($1, $2, $3)
             ON CONFLICT (article_id, incident_id) DO UPDATE
                 SET reference = COALESCE(excluded.reference, kb_article_incidents.reference)",
        )
        .bind(id)
        .bind(incident_id)
        .bind(reference)
        .execute(&mut *conn)
        .await
        .map(drop))?;
    }
    Ok(())
}

/// Writes a new article (with its tags and the incident it came from) and its audit entry, in
/// one transaction. Returns its id.
pub async fn create(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    draft: &Draft,
) -> Result<i64, KbError> {
    let clean = clean(draft).map_err(KbError::Invalid)?;
    let now = vigie_core::time::now();
    let mut tx = store.begin().await?;
    let id: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar::<_, i64>(
        "INSERT INTO kb_articles (title, symptoms, cause, resolution, domain, author_id, author,
                                  created_at, updated_at, folded_title, folded_body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) RETURNING id",
    )
    .bind(&clean.title)
    .bind(&clean.symptoms)
    .bind(&clean.cause)
    .bind(&clean.resolution)
    .bind(&clean.domain)
    .bind(actor.user_id)
    .bind(&actor.login)
    .bind(now)
    .bind(clean.folded_title())
    .bind(clean.folded_body())
    .fetch_one(&mut *conn)
    .await)
    .map_err(StoreError::from)?;
    write_tags_and_link(&mut tx, id, &clean).await?;
    audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "kb.create")
            .target("kb_article", id, clean.title.clone())
            .change(None, Some(clean.audit_view())),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Rewrites an article (tags replaced; the incident of the draft, if any, added to its
/// incidents) and its audit entry, in one transaction. Who may do it is the caller's check
/// ([`may_change`]).
pub async fn update(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
    draft: &Draft,
) -> Result<(), KbError> {
    let clean = clean(draft).map_err(KbError::Invalid)?;
    let before = get(store, id).await?.ok_or(KbError::NotFound)?;
    let now = vigie_core::time::now();
    let mut tx = store.begin().await?;
    let changed = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE kb_articles SET title = $1, symptoms = $2, cause = $3, resolution = $4,
                domain = $5, updated_at = $6, updated_by = $7, folded_title = $8,
                folded_body = $9
         WHERE id = $10",
    )
    .bind(&clean.title)
    .bind(&clean.symptoms)
    .bind(&clean.cause)
    .bind(&clean.resolution)
    .bind(&clean.domain)
    .bind(now)
    .bind(&actor.login)
    .bind(clean.folded_title())
    .bind(clean.folded_body())
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    if changed == 0 {
        return Err(KbError::NotFound);
    }
    write_tags_and_link(&mut tx, id, &clean).await?;
    audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "kb.update")
            .target("kb_article", id, clean.title.clone())
            .change(
                Some(json!({
                    "title": before.title,
                    "domain": before.domain,
                    "tags": before.tags,
                })),
                Some(clean.audit_view()),
            ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes an article, its tags and incident links (the audit entry keeps its title), in one
/// transaction. `false` when there was no such article.
pub async fn delete(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
) -> Result<bool, KbError> {
    let mut tx = store.begin().await?;
    let title: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar::<_, String>(
        "DELETE FROM kb_articles WHERE id = $1 RETURNING title",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await)
    .map_err(StoreError::from)?;
    let Some(title) = title else {
        return Ok(false);
    };
    audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "kb.delete")
            .target("kb_article", id, title.clone())
            .change(Some(json!({ "title": title })), None),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
