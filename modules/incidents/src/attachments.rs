//! Attachments: files kept under `{data_dir}/attachments/{incident}/…`, never in the database.
//! Their type is sniffed from the bytes against a short allow-list (images, PDF, plain text,
//! CSV, archives); executables, HTML and anything unknown are refused. They are served back as
//! downloads (`Content-Disposition: attachment`, `nosniff`), and removed with their incident.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use vigie_core::on_tx;
use vigie_core::store::{StoreError, StoreTx};

use crate::error::IncidentsError;
use crate::model::Attachment;

/// The largest attachment by default (10 MiB).
pub const DEFAULT_MAX: usize = 10 * 1024 * 1024;
const NAME_MAX: usize = 200;

/// The sniffed type of `bytes` named `file_name`, or why it is refused.
pub fn sniff(bytes: &[u8], file_name: &str) -> Result<&'static str, IncidentsError> {
    let starts = |m: &[u8]| bytes.starts_with(m);
    let refused = |what: &str| Err(IncidentsError::Refused(what.to_owned()));
    if bytes.is_empty() {
        return Err(IncidentsError::invalid("file", "is empty"));
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok("image/png");
    }
    if starts(b"\xff\xd8\xff") {
        return Ok("image/jpeg");
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok("image/gif");
    }
    if starts(b"%PDF-") {
        return Ok("application/pdf");
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return Ok("application/zip");
    }
    if starts(b"\x1f\x8b") {
        return Ok("application/gzip");
    }
    if starts(b"MZ")
        || starts(b"\x7fELF")
        || starts(b"\xca\xfe\xba\xbe")
        || starts(b"\xcf\xfa\xed\xfe")
    {
        return refused("executable");
    }
    if starts(b"#!") {
        return refused("script");
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return refused("unknown binary");
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
    {
        return refused("unknown binary");
    }
    let head: String = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    let markup = [
        "<!doctype",
        "<html",
        "<script",
        "<svg",
        "<?xml",
        "<head",
        "<body",
        "<iframe",
    ];
    if markup.iter().any(|m| head.starts_with(m)) || head.contains("<script") {
        return refused("HTML, XML or SVG");
    }
    if file_name.to_ascii_lowercase().ends_with(".csv") {
        Ok("text/csv")
    } else {
        Ok("text/plain")
    }
}

/// The name to keep: the last path component, without control characters, at most 200
/// characters; `file` when nothing is left.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"'))
        .take(NAME_MAX)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// A file written under the data directory, not yet recorded.
#[derive(Clone, Debug)]
pub struct Stored {
    pub key: String,
    pub file_name: String,
    pub content_type: &'static str,
    pub size: usize,
}

/// The path of a stored attachment.
pub fn path_of(data_dir: &Path, key: &str) -> PathBuf {
    crate::workflow::attachments_dir(data_dir).join(key)
}

/// Checks and writes an upload for incident `id`; returns what to record.
pub async fn store_file(
    data_dir: &Path,
    id: i64,
    name: &str,
    bytes: &[u8],
    max: usize,
) -> Result<Stored, IncidentsError> {
    if bytes.len() > max {
        return Err(IncidentsError::TooLarge(max));
    }
    let file_name = clean_name(name);
    let content_type = sniff(bytes, &file_name)?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let key = format!(
        "{id}/{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = path_of(data_dir, &key);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::write(&path, bytes).await?;
    Ok(Stored {
        key,
        file_name,
        content_type,
        size: bytes.len(),
    })
}

/// Deletes an incident's attachment rows in the caller's transaction; returns their keys (the
/// files go after the commit, with [`remove_files`]).
pub async fn delete_rows(tx: &mut StoreTx, incident_id: i64) -> Result<Vec<String>, StoreError> {
    Ok(on_tx!(tx, conn => sqlx::query_scalar::<_, String>(
        "DELETE FROM incident_attachments WHERE incident_id = $1 RETURNING storage_key",
    )
    .bind(incident_id)
    .fetch_all(conn)
    .await)?)
}

/// Removes stored files (after the commit that forgot them); a failure is logged.
pub fn remove_files(data_dir: &Path, keys: &[String]) {
    for key in keys {
        let path = path_of(data_dir, key);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "An attachment's file could not be removed.");
        }
        if let Some(dir) = path.parent() {
            // Only empty directories go.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// RFC 5987 encoding of a file name for `filename*`.
fn encode_rfc5987(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `Content-Disposition` of a download: an ASCII fallback and the exact UTF-8 name.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode_rfc5987(name)
    )
}

/// Serves a stored attachment as a download.
pub async fn serve(data_dir: &Path, a: &Attachment) -> Result<HttpResponse, IncidentsError> {
    let bytes = match tokio::fs::read(path_of(data_dir, &a.storage_key)).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IncidentsError::AttachmentNotFound(a.id));
        }
        Err(e) => return Err(e.into()),
    };
    let disposition = HeaderValue::from_str(&content_disposition(&a.file_name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, a.content_type.clone()))
        .insert_header((CONTENT_DISPOSITION, disposition))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; sandbox"))
        .insert_header(("Cache-Control", "private, no-store"))
        .body(bytes))
}

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub data: Vec<u8>,
}

/// Parses a `multipart/form-data` body (the console's upload form) whose `Content-Type` is
/// `content_type`. Small on purpose: the whole body is in memory, bounded by the route.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, IncidentsError> {
    let bad = || IncidentsError::invalid("body", "is not a valid multipart/form-data body");
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 200)
        .ok_or_else(bad)?;
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(next_delimiter.as_bytes());
    let start = memchr::memmem::find(body, delimiter.as_bytes()).ok_or_else(bad)?;
    let mut pos = start + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = body.get(pos..).ok_or_else(bad)?;
        if rest.starts_with(b"--") {
            break;
        }
        let rest = rest.strip_prefix(b"\r\n").ok_or_else(bad)?;
        let head_end = memchr::memmem::find(rest, b"\r\n\r\n").ok_or_else(bad)?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|_| bad())?;
        let content = &rest[head_end + 4..];
        let end = finder.find(content).ok_or_else(bad)?;
        let mut name = None;
        let mut file_name = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for param in v.split(';').map(str::trim) {
                if let Some(n) = param.strip_prefix("name=") {
                    name = Some(n.trim_matches('"').to_owned());
                } else if let Some(f) = param.strip_prefix("filename=") {
                    file_name = Some(f.trim_matches('"').to_owned());
                }
            }
        }
        parts.push(Part {
            name: name.ok_or_else(bad)?,
            file_name,
            data: content[..end].to_vec(),
        });
        let consumed = rest.as_ptr() as usize - body.as_ptr() as usize;
        pos = consumed + head_end + 4 + end + next_delimiter.len();
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_sniffed_from_the_bytes() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\nxxxx", "a.txt").ok(),
            Some("image/png")
        );
        assert_eq!(sniff(b"%PDF-1.7 ...", "x").ok(), Some("application/pdf"));
        assert_eq!(
            sniff("a;b\n1;2\n".as_bytes(), "t.CSV").ok(),
            Some("text/csv")
        );
        assert_eq!(
            sniff("journal: réseau coupé\n".as_bytes(), "log").ok(),
            Some("text/plain")
        );
        for bad in [
            &b"MZ\x90\x00\x03"[..],
            b"\x7fELF\x02\x01",
            b"  <!DOCTYPE html><html>",
            b"<svg onload=alert(1)>",
            b"#!/bin/sh\nrm -rf /",
            b"\x00\x01\x02\x03",
        ] {
            assert!(
                matches!(sniff(bad, "x.png"), Err(IncidentsError::Refused(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_are_cleaned_and_encoded() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\temp\\rapport été.pdf"), "rapport été.pdf");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(
            content_disposition("rapport été\";.pdf"),
            "attachment; filename=\"rapport _t___.pdf\"; filename*=UTF-8''rapport%20%C3%A9t%C3%A9%22%3B.pdf"
        );
    }

    #[test]
    fn multipart_bodies_are_split() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XyZ", body).unwrap_or_default();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "_csrf");
        assert_eq!(parts[0].data, b"tok");
        assert_eq!(parts[1].file_name.as_deref(), Some("a.txt"));
        assert_eq!(parts[1].data, b"line1\r\nline2");
        assert!(parse_multipart("multipart/form-data; boundary=XyZ", b"garbage").is_err());
    }
}
