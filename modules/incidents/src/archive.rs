//! The archive of closed incidents (DOMAIN.md: "when closed incidents pile up, they are written
//! out to XML files and emptied from the live tables").
//!
//! [`run`] writes the incidents closed for longer than `[incidents] archive_after` to
//! `{data_dir}/archives/incidents/incidents-YYYYMMDDTHHMMSSZ.xml` (a temporary file, fsynced,
//! then renamed), and only then removes them from the live tables in one transaction; their
//! attachment files go after the commit, their bytes being in the archive. [`spawn`] runs it
//! every hour. [`list`] shows the files, [`import`] brings one back.
//!
//! A re-imported incident comes back in the `archived` state (whatever it was when written):
//! read-only, and never taken again by the job, which only takes `closed` ones. It keeps its
//! reference and every field, person, resolution line, event and attachment; it gets new row
//! ids (ids are not stable across an archive: the reference is the incident's identity).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use vigie_core::audit::{self, Actor, Entry};
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};

use crate::attachments;
use crate::error::IncidentsError;
use crate::model;
use crate::xml::{self, Item};

/// The default of `[incidents] archive_after`.
pub const DEFAULT_ARCHIVE_AFTER: Duration = Duration::from_secs(90 * 86_400);
/// How often the job looks for incidents to archive.
pub const JOB_INTERVAL: Duration = Duration::from_secs(3600);
/// Most incidents written to one file (the job takes the rest at its next run).
const BATCH: i64 = 1000;

/// The archive's settings, given as `web::Data<ArchiveSettings>` (defaults otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// Closed incidents older than this (since their closing) are archived.
    pub archive_after: Duration,
}

impl Default for ArchiveSettings {
    fn default() -> ArchiveSettings {
        ArchiveSettings {
            archive_after: DEFAULT_ARCHIVE_AFTER,
        }
    }
}

/// Where the archive files are.
pub fn archives_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("archives").join("incidents")
}

/// Whether `name` is an archive file's name (`incidents-….xml`, no path).
pub fn is_archive_name(name: &str) -> bool {
    name.starts_with("incidents-")
        && name.ends_with(".xml")
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !name.contains("..")
}

/// Whole incidents with, when `with_data`, their attachments' bytes; unknown ids are refused.
pub async fn items(
    store: &Store,
    data_dir: &Path,
    ids: &[i64],
    with_data: bool,
) -> Result<Vec<Item>, IncidentsError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let full = model::load(store, *id)
            .await?
            .ok_or(IncidentsError::NotFound(*id))?;
        let data = if with_data {
            let mut data = Vec::with_capacity(full.attachments.len());
            for a in &full.attachments {
                match tokio::fs::read(attachments::path_of(data_dir, &a.storage_key)).await {
                    Ok(b) => data.push(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        tracing::warn!(incident = %full.incident.reference, file = %a.file_name,
                            "An attachment's file is missing: exported without its bytes.");
                        data.push(None);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(data)
        } else {
            None
        };
        out.push(Item { full, data });
    }
    Ok(out)
}

/// What one run wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunResult {
    pub file_name: String,
    pub references: Vec<String>,
}

/// Writes `text` to `dir/name` through a temporary file, fsynced then renamed; a name already
/// taken gets a `-N` suffix. Returns the name used.
fn write_durably(dir: &Path, name: &str, text: &[u8]) -> std::io::Result<String> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let stem = name.trim_end_matches(".xml");
    let mut chosen = name.to_owned();
    let mut n = 1;
    while dir.join(&chosen).exists() {
        chosen = format!("{stem}-{n}.xml");
        n += 1;
    }
    let tmp = dir.join(format!(".{chosen}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(&chosen))?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(chosen)
}

/// Archives the incidents closed before `now - age`: the file first, then their removal in one
/// transaction. `None` when there was nothing to archive. If an incident changed while the file
/// was written, nothing is removed and the file is taken back.
pub async fn run(
    store: &Store,
    data_dir: &Path,
    age: Duration,
    actor: Option<&Actor>,
    ip: Option<&str>,
) -> Result<Option<RunResult>, IncidentsError> {
    let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
    let cutoff = vigie_core::time::now()
        .checked_sub_signed(age)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let ids: Vec<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT id FROM incidents WHERE state = 'closed' AND closed_at < $1 ORDER BY id LIMIT $2",
    )
    .bind(cutoff)
    .bind(BATCH)
    .fetch_all(pool)
    .await)?;
    if ids.is_empty() {
        return Ok(None);
    }
    let items = items(store, data_dir, &ids, true).await?;
    let references: Vec<String> = items
        .iter()
        .map(|i| i.full.incident.reference.clone())
        .collect();
    let text = xml::write(&items);
    let name = format!(
        "incidents-{}.xml",
        vigie_core::time::now().format("%Y%m%dT%H%M%SZ")
    );
    let dir = archives_dir(data_dir);
    let file_name = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || write_durably(&dir, &name, text.as_bytes()))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
    };
    let removed = remove_archived(store, &ids, &references, &file_name, actor, ip).await;
    match removed {
        Ok(keys) => {
            attachments::remove_files(data_dir, &keys);
            tracing::info!(file = %file_name, count = ids.len(), "Closed incidents archived.");
            Ok(Some(RunResult {
                file_name,
                references,
            }))
        }
        Err(e) => {
            let _ = std::fs::remove_file(dir.join(&file_name));
            Err(e)
        }
    }
}

/// Removes the archived incidents in one transaction; returns their attachments' keys.
async fn remove_archived(
    store: &Store,
    ids: &[i64],
    references: &[String],
    file_name: &str,
    actor: Option<&Actor>,
    ip: Option<&str>,
) -> Result<Vec<String>, IncidentsError> {
    let mut tx = store.begin().await?;
    let mut keys = Vec::new();
    for id in ids {
        keys.extend(attachments::delete_rows(&mut tx, *id).await?);
        for table in ["incident_events", "incident_resolutions", "incident_people"] {
            let sql = format!("DELETE FROM {table} WHERE incident_id = $1");
            on_tx!(&mut tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
        }
        let done = on_tx!(&mut tx, conn => sqlx::query(
            "DELETE FROM incidents WHERE id = $1 AND state = 'closed'",
        )
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
        if done != 1 {
            return Err(IncidentsError::Conflict {
                step: "archive",
                state: "changed".to_owned(),
                hint: ": it changed while the archive was written; nothing was removed, try again",
            });
        }
    }
    audit::record(
        &mut tx,
        Entry {
            actor,
            ip,
            action: "incident.archive",
            target_kind: Some("incident_archive"),
            target_id: None,
            target_label: Some(file_name.to_owned()),
            before: None,
            after: Some(serde_json::json!({"count": ids.len(), "references": references})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(keys)
}

/// Runs the job every [`JOB_INTERVAL`] until the application stops (the first run a minute
/// after the start). Spawned by `vigie serve`.
pub fn spawn(store: Store, data_dir: PathBuf, age: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let mut tick = tokio::time::interval(JOB_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = run(&store, &data_dir, age, None, None).await {
                tracing::warn!(error = %e, "Cannot archive closed incidents.");
            }
        }
    })
}

/// One archive file as listed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ArchiveFile {
    pub name: String,
    pub size: u64,
    /// From the root element; `None` when the file cannot be read.
    pub header: Option<xml::Header>,
}

/// The archive files, newest first.
pub async fn list(data_dir: &Path) -> Result<Vec<ArchiveFile>, IncidentsError> {
    let dir = archives_dir(data_dir);
    let mut out = Vec::new();
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_archive_name(&name) {
            continue;
        }
        let size = entry.metadata().await?.len();
        // The root element is at the start: 4 KiB are enough to read it.
        let head = read_head(&entry.path()).await.ok();
        out.push(ArchiveFile {
            name,
            size,
            header: head.and_then(|h| xml::header(&h).ok()),
        });
    }
    out.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(out)
}

async fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut f = tokio::fs::File::open(path).await?;
    let mut buf = vec![0; 4096];
    let n = f.read(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}

/// The bytes of the archive named `name` (a listed name only).
pub async fn read_archive(data_dir: &Path, name: &str) -> Result<Vec<u8>, IncidentsError> {
    if !is_archive_name(name) {
        return Err(IncidentsError::invalid(
            "name",
            format!("`{name}` is not an archive"),
        ));
    }
    match tokio::fs::read(archives_dir(data_dir).join(name)).await {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(IncidentsError::invalid(
            "name",
            format!("no archive `{name}`"),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn user_id(tx: &mut StoreTx, login: &str) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(tx, conn => sqlx::query_scalar::<_, i64>(
        "SELECT id FROM users WHERE login = $1",
    )
    .bind(login)
    .fetch_optional(conn)
    .await)?)
}

/// Brings the incidents of an XML file back: the whole file is checked first (syntax, version,
/// every element), then every reference (one already present is refused with its name), then
/// everything is written in one transaction, attachments restored to disk. On any error nothing
/// is kept. Returns the references imported.
pub async fn import(
    store: &Store,
    data_dir: &Path,
    bytes: &[u8],
    label: &str,
    actor: Option<&Actor>,
    ip: Option<&str>,
) -> Result<Vec<String>, IncidentsError> {
    let mut items = xml::read(bytes)?;
    // The bytes decide the type, as at upload: an archive edited by hand cannot make the hub
    // serve a refused kind of file.
    for item in &mut items {
        let reference = item.full.incident.reference.clone();
        let data = item.data.as_ref();
        for (k, a) in item.full.attachments.iter_mut().enumerate() {
            if let Some(Some(bytes)) = data.and_then(|d| d.get(k)) {
                a.content_type = attachments::sniff(bytes, &a.file_name)
                    .map_err(|e| {
                        IncidentsError::invalid(
                            "file",
                            format!("incident {reference}, attachment `{}`: {e}", a.file_name),
                        )
                    })?
                    .to_owned();
            }
        }
    }
    if items.is_empty() {
        return Err(IncidentsError::invalid("file", "holds no incident"));
    }
    let mut seen = std::collections::HashSet::new();
    for i in &items {
        if !seen.insert(i.full.incident.reference.as_str()) {
            return Err(IncidentsError::invalid(
                "file",
                format!(
                    "incident {} appears twice in the file",
                    i.full.incident.reference
                ),
            ));
        }
    }
    let mut written: Vec<String> = Vec::new();
    let result = import_tx(store, data_dir, &items, label, actor, ip, &mut written).await;
    if result.is_err() {
        attachments::remove_files(data_dir, &written);
    }
    result
}

async fn import_tx(
    store: &Store,
    data_dir: &Path,
    items: &[Item],
    label: &str,
    actor: Option<&Actor>,
    ip: Option<&str>,
    written: &mut Vec<String>,
) -> Result<Vec<String>, IncidentsError> {
    let mut tx = store.begin().await?;
    let mut references = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let i = &item.full.incident;
        let present: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
            "SELECT reference FROM incidents
             WHERE reference = $1 OR (year = $2 AND domain = $3 AND number = $4)",
        )
        .bind(&i.reference)
        .bind(i.year)
        .bind(&i.domain)
        .bind(i.number)
        .fetch_optional(conn)
        .await)
        .map_err(StoreError::from)?;
        if let Some(p) = present {
            return Err(IncidentsError::invalid(
                "file",
                format!(
                    "incident {} is already present (as {p}): nothing was imported",
                    i.reference
                ),
            ));
        }
        let opener_id = user_id(&mut tx, &i.opener_login).await?;
        let id: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
            "INSERT INTO incidents (reference, year, number, domain, category, criticality, title,
                    description, comments, detection, alert_id, opener_id, opener_login, opened_at,
                    state, follow, acknowledged_at, resolved_at, closed_at, deleted_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'archived', $15,
                     $16, $17, $18, $19, $20)
             RETURNING id",
        )
        .bind(&i.reference)
        .bind(i.year)
        .bind(i.number)
        .bind(&i.domain)
        .bind(&i.category)
        .bind(&i.criticality)
        .bind(&i.title)
        .bind(&i.description)
        .bind(&i.comments)
        .bind(&i.detection)
        .bind(i.alert_id)
        .bind(opener_id)
        .bind(&i.opener_login)
        .bind(i.opened_at)
        .bind(i.follow)
        .bind(i.acknowledged_at)
        .bind(i.resolved_at)
        .bind(i.closed_at)
        .bind(i.deleted_at)
        .bind(i.updated_at)
        .fetch_one(conn)
        .await)
        .map_err(StoreError::from)?;
        // The counter never gives the number again (a fresh hub, or counters reset).
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO incident_counters (year, domain, last) VALUES ($1, $2, $3)
             ON CONFLICT (year, domain) DO UPDATE SET last = CASE
                 WHEN incident_counters.last < excluded.last THEN excluded.last
                 ELSE incident_counters.last END",
        )
        .bind(i.year)
        .bind(&i.domain)
        .bind(i.number)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
        for p in &item.full.people {
            let Some(uid) = user_id(&mut tx, &p.login).await? else {
                return Err(IncidentsError::invalid(
                    "file",
                    format!(
                        "incident {}: person `{}` is not a user of this hub: nothing was imported",
                        i.reference, p.login
                    ),
                ));
            };
            on_tx!(&mut tx, conn => sqlx::query(
                "INSERT INTO incident_people (incident_id, user_id, login, kind, added_at, added_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(uid)
            .bind(&p.login)
            .bind(&p.kind)
            .bind(p.added_at)
            .bind(&p.added_by)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
        }
        for r in &item.full.resolutions {
            let author = user_id(&mut tx, &r.author_login).await?;
            on_tx!(&mut tx, conn => sqlx::query(
                "INSERT INTO incident_resolutions (incident_id, text, minutes, final, author_id,
                        author_login, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(&r.text)
            .bind(r.minutes)
            .bind(r.is_final)
            .bind(author)
            .bind(&r.author_login)
            .bind(r.at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
        }
        for e in &item.full.timeline {
            let actor_id = match &e.actor_login {
                Some(l) => user_id(&mut tx, l).await?,
                None => None,
            };
            on_tx!(&mut tx, conn => sqlx::query(
                "INSERT INTO incident_events (incident_id, at, actor_id, actor_login, kind,
                        from_state, to_state, details)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(e.at)
            .bind(actor_id)
            .bind(&e.actor_login)
            .bind(&e.kind)
            .bind(&e.from_state)
            .bind(&e.to_state)
            .bind(e.details.to_string())
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
        }
        for (k, a) in item.full.attachments.iter().enumerate() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let key = format!("{id}/import-{nanos}-{}-{n}-{k}", std::process::id());
            if let Some(Some(bytes)) = item.data.as_ref().and_then(|d| d.get(k)) {
                let path = attachments::path_of(data_dir, &key);
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                written.push(key.clone());
                tokio::fs::write(&path, bytes).await?;
            }
            on_tx!(&mut tx, conn => sqlx::query(
                "INSERT INTO incident_attachments (incident_id, file_name, content_type, size,
                        storage_key, uploaded_by, uploaded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(&a.file_name)
            .bind(&a.content_type)
            .bind(a.size)
            .bind(&key)
            .bind(&a.uploaded_by)
            .bind(a.uploaded_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
        }
        references.push(i.reference.clone());
    }
    audit::record(
        &mut tx,
        Entry {
            actor,
            ip,
            action: "incident.import",
            target_kind: Some("incident_archive"),
            target_id: None,
            target_label: Some(label.to_owned()),
            before: None,
            after: Some(serde_json::json!({"count": references.len(), "references": references})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(references)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_archive_names_are_read() {
        assert!(is_archive_name("incidents-20261121T102321Z.xml"));
        assert!(is_archive_name("incidents-20261121T102321Z-2.xml"));
        for bad in [
            "../vigie.db",
            "incidents-../../x.xml",
            "incidents-x/../../y.xml",
            ".incidents-20261121T102321Z.xml.tmp",
            "vigie.db",
            "incidents-a.xml.tmp",
        ] {
            assert!(!is_archive_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_taken_name_gets_a_suffix_and_no_temporary_file_stays() {
        let dir = std::env::temp_dir().join(format!("vigie-archive-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = write_durably(&dir, "incidents-1.xml", b"one").unwrap_or_default();
        let b = write_durably(&dir, "incidents-1.xml", b"two").unwrap_or_default();
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("incidents-1.xml", "incidents-1-1.xml")
        );
        assert_eq!(std::fs::read(dir.join(&b)).unwrap_or_default(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
