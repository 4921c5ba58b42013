//! The printable sheet, the XML export and the archive: the PDF read back with poppler's
//! `pdftotext` and `pdffonts` (accents, Greek and Cyrillic intact, the font embedded), the XML
//! read back to the same data, the export → archive → re-import round trip compared field by
//! field (attachments' bytes included), the job's choice of incidents, refused archives leaving
//! nothing behind, and who may use each route.

use std::path::Path;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use serde_json::{Value, json};
use vigie_auth::session::SessionPolicy;
use vigie_console::{Console, ConsoleSettings};
use vigie_core::audit::Actor;
use vigie_core::role::Role;
use vigie_incidents::archive::{self, ArchiveSettings};
use vigie_incidents::{model, xml};

use crate::{Answer, Hub, call, count, incident_in, raw};

const TITLE: &str = "Coupure électrique à Dakar — réseau Ωmega";
const CYRILLIC: &str = "Подстанция";

async fn app(
    h: &Hub,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    let console = Console::start(ConsoleSettings::default(), &h.store)
        .await
        .expect("console");
    test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(h.pipeline.clone()))
            .app_data(web::Data::new(h.settings.clone()))
            .app_data(web::Data::new(ArchiveSettings::default()))
            .app_data(web::Data::new(console))
            .configure(vigie_incidents::exports_routes::configure)
            .configure(vigie_incidents::configure),
    )
    .await
}

/// An incident with tricky text, a resolution, two attachments, walked to `closed`.
async fn rich_incident<S>(app: &S, h: &Hub, close: bool) -> i64
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let op = Some(h.tokens["operator"].as_str());
    let id = incident_in(app, h, "network", "resolved").await;
    let long: String = (0..120)
        .map(|n| format!("Ligne {n} : l'onduleur de la salle B a basculé ; {CYRILLIC} отключена. "))
        .collect();
    let a = call(
        app,
        op,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(json!({"title": TITLE, "comments": "commentaire"})),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // Text the forms would have trimmed, straight into the table: it must come back exactly.
    vigie_core::on_pool!(&h.store, pool => sqlx::query(
        "UPDATE incidents SET description = $1, comments = $2 WHERE id = $3")
        .bind(format!("  indented first line\r\nsecond <line> & \"quotes\" ]]> \u{1}bell\n\n{long}"))
        .bind("tab\there, trailing spaces   ")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap();
    for (name, bytes) in [
        (
            "journal été.txt",
            "journal: réseau coupé\r\nfin\n".as_bytes().to_vec(),
        ),
        ("capture.png", {
            let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
            b.extend((0u8..=255).collect::<Vec<_>>());
            b
        }),
    ] {
        let a = raw(
            app,
            test::TestRequest::post()
                .uri(&format!(
                    "/api/v1/incidents/{id}/attachments?name={}",
                    urlencode(name)
                ))
                .insert_header(("Authorization", format!("Bearer {}", h.tokens["operator"])))
                .set_payload(bytes),
        )
        .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }
    if close {
        let a = call(
            app,
            op,
            "POST",
            &format!("/api/v1/incidents/{id}/close"),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["state"], "closed");
    }
    id
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Makes an incident look closed `days` ago.
async fn closed_days_ago(h: &Hub, id: i64, days: i64) {
    let at = vigie_core::time::now() - chrono::Duration::days(days);
    vigie_core::on_pool!(&h.store, pool => sqlx::query(
        "UPDATE incidents SET closed_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap();
}

/// The whole incident as comparable JSON: row ids (which an archive does not keep) and the
/// state (which comes back `archived`) left out; attachments' bytes added.
async fn snapshot(h: &Hub, id: i64) -> (Value, Vec<Vec<u8>>) {
    let full = model::load(&h.store, id).await.unwrap().expect("incident");
    let mut bytes = Vec::new();
    for a in &full.attachments {
        bytes.push(
            std::fs::read(vigie_incidents::attachments::path_of(
                &h.data_dir(),
                &a.storage_key,
            ))
            .unwrap(),
        );
    }
    let mut v = serde_json::to_value(&full).unwrap();
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("id");
                m.remove("incident_id");
                for x in m.values_mut() {
                    strip(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v["incident"]["state"] = Value::Null;
    (v, bytes)
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} is needed (Debian package poppler-utils): {e}"));
    assert!(out.status.success(), "{name} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_pdf_sheet_prints_accents_and_cyrillic_in_an_embedded_font() {
    let h = Hub::new().await;
    let app = app(&h).await;
    let id = rich_incident(&app, &h, true).await;
    let a = raw(
        &app,
        test::TestRequest::get()
            .uri(&format!(
                "/api/v1/incidents/{id}/pdf?lang=fr&tz=Europe/Paris"
            ))
            .insert_header(("Authorization", format!("Bearer {}", h.tokens["user"]))),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    assert_eq!(a.headers.get("content-type").unwrap(), "application/pdf");
    let disposition = a
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"incident-")
            && disposition.contains(".pdf\""),
        "{disposition}"
    );
    assert!(a.bytes.starts_with(b"%PDF"));
    let dir = tempdir(&h);
    let file = dir.join("sheet.pdf");
    std::fs::write(&file, &a.bytes).unwrap();
    // `VIGIE_KEEP_PDF=/tmp/sheet.pdf` keeps the sheet, to look at it.
    if let Ok(keep) = std::env::var("VIGIE_KEEP_PDF") {
        std::fs::write(keep, &a.bytes).unwrap();
    }
    let path = file.to_str().unwrap();
    let text = tool("pdftotext", &["-enc", "UTF-8", path, "-"]);
    assert!(text.contains(TITLE), "the title is not intact in:\n{text}");
    assert!(text.contains(CYRILLIC), "no Cyrillic in:\n{text}");
    // French labels, the resolution line, an attachment's name, the timeline.
    for expected in [
        "Criticité",
        "Délai de résolution",
        "Routeur redémarré",
        "journal été.txt",
        "Historique",
    ] {
        assert!(text.contains(expected), "{expected} is missing in:\n{text}");
    }
    let fonts = tool("pdffonts", &[path]);
    // Two fonts (regular and bold), both DejaVu, TrueType, embedded and subset.
    let rows: Vec<&str> = fonts
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), 2, "{fonts}");
    for line in &rows {
        assert!(
            line.contains("TrueType") && line.contains("+DejaVuSans"),
            "{fonts}"
        );
        let cols: Vec<&str> = line.split_whitespace().collect();
        // … emb sub uni object ID: `emb` is the fifth column from the end.
        assert_eq!(cols[cols.len() - 5], "yes", "not embedded: {line}");
        assert_eq!(cols[cols.len() - 4], "yes", "not a subset: {line}");
        assert_eq!(cols[cols.len() - 3], "yes", "no Unicode map: {line}");
    }
    // Subset: far smaller than the two fonts (1.4 MB).
    assert!(a.bytes.len() < 200_000, "{} bytes", a.bytes.len());
    // The long description breaks pages.
    let info = tool("pdfinfo", &[path]);
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap();
    assert!(pages >= 2, "{info}");
    // English labels when asked.
    let a = raw(
        &app,
        test::TestRequest::get()
            .uri(&format!("/api/v1/incidents/{id}/pdf?lang=en"))
            .insert_header(("Authorization", format!("Bearer {}", h.tokens["operator"]))),
    )
    .await;
    std::fs::write(&file, &a.bytes).unwrap();
    let text = tool("pdftotext", &["-enc", "UTF-8", path, "-"]);
    assert!(text.contains("Time to resolve"), "{text}");
    // Unknown incident, bad zone.
    let op = Some(h.tokens["operator"].as_str());
    assert_eq!(
        call(&app, op, "GET", "/api/v1/incidents/999999/pdf", None)
            .await
            .status,
        404
    );
    let a = call(
        &app,
        op,
        "GET",
        &format!("/api/v1/incidents/{id}/pdf?tz=Mars/Olympus"),
        None,
    )
    .await;
    assert_eq!(a.status, 400, "{:?}", a.body);
}

fn tempdir(h: &Hub) -> std::path::PathBuf {
    let d = h.data_dir().join("tmp-test");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn the_xml_export_parses_back_to_the_same_data() {
    let h = Hub::new().await;
    let app = app(&h).await;
    let id = rich_incident(&app, &h, false).await;
    let other = incident_in(&app, &h, "systems", "qualified").await;
    let op = Some(h.tokens["operator"].as_str());

    let a = call(
        &app,
        op,
        "GET",
        &format!("/api/v1/incidents/{id}/xml?attachments=1"),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(
        a.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let text = String::from_utf8(a.bytes.clone()).unwrap();
    assert!(text.contains("<incidents version=\"1\""), "{text}");
    let items = xml::read(&a.bytes).unwrap();
    assert_eq!(items.len(), 1);
    let full = model::load(&h.store, id).await.unwrap().unwrap();
    let mut expected = serde_json::to_value(&full).unwrap();
    let got = serde_json::to_value(&items[0].full).unwrap();
    // The attachments' storage keys are not exported (serde skips them anyway).
    expected["attachments"] = got["attachments"].clone();
    assert_eq!(got, expected);
    assert_eq!(
        items[0].full.incident.description,
        full.incident.description
    );
    assert!(
        full.incident
            .description
            .starts_with("  indented first line\r\n")
    );
    assert_eq!(
        items[0].full.incident.comments,
        "tab\there, trailing spaces   "
    );
    for (n, att) in full.attachments.iter().enumerate() {
        let on_disk = std::fs::read(vigie_incidents::attachments::path_of(
            &h.data_dir(),
            &att.storage_key,
        ))
        .unwrap();
        assert_eq!(
            items[0].data.as_ref().unwrap()[n].as_deref(),
            Some(on_disk.as_slice())
        );
        assert_eq!(items[0].full.attachments[n].file_name, att.file_name);
        assert_eq!(items[0].full.attachments[n].size, att.size);
    }
    // Without ?attachments, metadata only.
    let a = call(
        &app,
        op,
        "GET",
        &format!("/api/v1/incidents/{id}/xml"),
        None,
    )
    .await;
    let items = xml::read(&a.bytes).unwrap();
    assert!(items[0].data.as_ref().unwrap().iter().all(Option::is_none));
    assert_eq!(items[0].full.attachments.len(), 2);

    // A selection by ids, and by the list's filters.
    let a = call(
        &app,
        op,
        "GET",
        &format!("/api/v1/incidents/export.xml?ids={id},{other}"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    let refs: Vec<String> = xml::read(&a.bytes)
        .unwrap()
        .into_iter()
        .map(|i| i.full.incident.reference)
        .collect();
    assert_eq!(refs.len(), 2);
    let a = call(
        &app,
        op,
        "GET",
        "/api/v1/incidents/export.xml?state=qualified",
        None,
    )
    .await;
    let items = xml::read(&a.bytes).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].full.incident.id, other);
    let a = call(
        &app,
        op,
        "GET",
        "/api/v1/incidents/export.xml?ids=1,x",
        None,
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        call(
            &app,
            op,
            "GET",
            "/api/v1/incidents/export.xml?ids=999999",
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn export_archive_reimport_round_trip_loses_nothing() {
    let h = Hub::new().await;
    let app = app(&h).await;
    let old = rich_incident(&app, &h, true).await;
    closed_days_ago(&h, old, 120).await;
    // Not taken: closed recently; resolved long ago but not closed.
    let recent = rich_incident(&app, &h, true).await;
    closed_days_ago(&h, recent, 10).await;
    let open = incident_in(&app, &h, "network", "resolved").await;
    vigie_core::on_pool!(&h.store, pool => sqlx::query(
        "UPDATE incidents SET resolved_at = $1, opened_at = $1 WHERE id = $2")
        .bind(vigie_core::time::now() - chrono::Duration::days(400))
        .bind(open)
        .execute(pool).await.map(|_| ()))
    .unwrap();

    let (before, before_bytes) = snapshot(&h, old).await;
    let reference = before["incident"]["reference"].as_str().unwrap().to_owned();
    let keys: Vec<String> = model::load(&h.store, old)
        .await
        .unwrap()
        .unwrap()
        .attachments
        .into_iter()
        .map(|a| a.storage_key)
        .collect();

    // Run now, over the API.
    let op = Some(h.tokens["operator"].as_str());
    let a = call(&app, op, "POST", "/api/v1/incidents/archives/run", None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["references"], json!([reference]));
    let name = a.body["file_name"].as_str().unwrap().to_owned();
    assert!(
        name.starts_with("incidents-") && name.ends_with("Z.xml"),
        "{name}"
    );
    let file = archive::archives_dir(&h.data_dir()).join(&name);
    assert!(file.exists());
    // Gone from every live table, attachments' files removed; the others stay.
    for table in [
        "incidents WHERE id",
        "incident_people WHERE incident_id",
        "incident_resolutions WHERE incident_id",
        "incident_events WHERE incident_id",
        "incident_attachments WHERE incident_id",
    ] {
        assert_eq!(
            count(&h.store, &format!("SELECT COUNT(*) FROM {table} = {old}")).await,
            0,
            "{table}"
        );
    }
    for k in &keys {
        assert!(!vigie_incidents::attachments::path_of(&h.data_dir(), k).exists());
    }
    assert!(model::load(&h.store, recent).await.unwrap().is_some());
    assert!(model::load(&h.store, open).await.unwrap().is_some());
    // Nothing more to archive.
    let a = call(&app, op, "POST", "/api/v1/incidents/archives/run", None).await;
    assert_eq!(a.body["file_name"], Value::Null);

    // Listed with its size, count and dates.
    let a = call(&app, op, "GET", "/api/v1/incidents/archives", None).await;
    assert_eq!(a.status, 200);
    let listed = &a.body["archives"][0];
    assert_eq!(listed["name"], name.as_str());
    assert_eq!(
        listed["size"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );
    assert_eq!(listed["header"]["count"], 1);
    assert!(listed["header"]["first_opened"].is_string());

    // Re-import: same reference, every field, person, line, event and attachment.
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/archives/{name}/import"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["imported"], json!([reference]));
    let back = model::get_by_reference(&h.store, &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.state, "archived");
    let (after, after_bytes) = snapshot(&h, back.id).await;
    assert_eq!(after, before);
    assert_eq!(after_bytes, before_bytes);
    // The job never takes an archived incident again.
    closed_days_ago(&h, back.id, 500).await;
    assert!(
        archive::run(
            &h.store,
            &h.data_dir(),
            ArchiveSettings::default().archive_after,
            None,
            None
        )
        .await
        .unwrap()
        .is_none()
    );
    // A second import of the same file is refused, naming the reference.
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/archives/{name}/import"),
        None,
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.body.to_string().contains(&reference), "{:?}", a.body);
    // An opening after the import does not take an archived number.
    let next = incident_in(&app, &h, "network", "created").await;
    let next = model::get(&h.store, next).await.unwrap().unwrap();
    assert_ne!(next.reference, reference);
}

fn attachment_files(dir: &Path) -> usize {
    fn walk(d: &Path, n: &mut usize) {
        if let Ok(entries) = std::fs::read_dir(d) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), n);
                } else {
                    *n += 1;
                }
            }
        }
    }
    let mut n = 0;
    walk(&dir.join("attachments"), &mut n);
    n
}

#[tokio::test]
async fn malformed_archives_and_duplicate_references_are_refused_with_nothing_written() {
    let h = Hub::new().await;
    let app = app(&h).await;
    let id = rich_incident(&app, &h, true).await;
    let op = Some(h.tokens["operator"].as_str());
    let good = call(
        &app,
        op,
        "GET",
        &format!("/api/v1/incidents/{id}/xml?attachments=1"),
        None,
    )
    .await
    .bytes;
    let good = String::from_utf8(good).unwrap();
    let reference = model::get(&h.store, id).await.unwrap().unwrap().reference;
    // A second, new incident in the same file: the duplicate must hold it back too.
    let fresh = good
        .replace(
            &format!("<reference>{reference}</reference>"),
            "<reference>2001/NET/1</reference>",
        )
        .replace("<year>", "<year>1")
        .replace("</incidents>\n", "");
    let fresh = fresh
        .split_once("<incident>")
        .map(|(_, rest)| format!("  <incident>{rest}"))
        .unwrap();
    let duplicate = good.replacen("  <incident>\n", &format!("{fresh}  <incident>\n"), 1);

    // The first attachment's bytes swapped for an executable of the same size.
    let executable = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let open = "<data encoding=\"base64\">";
        let start = good.find(open).unwrap() + open.len();
        let end = start + good[start..].find("</data>").unwrap();
        let mut exe = b"MZ\x90\x00".to_vec();
        exe.resize(b64.decode(&good[start..end]).unwrap().len(), 0);
        format!("{}{}{}", &good[..start], b64.encode(&exe), &good[end..])
    };
    let title_line = format!(
        "line {}",
        good[..good.find("</title>").unwrap()].matches('\n').count() + 1
    );
    let incidents = count(&h.store, "SELECT COUNT(*) FROM incidents").await;
    let events = count(&h.store, "SELECT COUNT(*) FROM incident_events").await;
    let files = attachment_files(&h.data_dir());
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed",
            good.replace("</title>", "</titel>"),
            &title_line,
        ),
        (
            "truncated",
            good[..good.len() / 2].to_owned(),
            "never closed",
        ),
        (
            "version",
            good.replace("version=\"1\"", "version=\"7\""),
            "unknown version `7`",
        ),
        (
            "missing",
            good.replace(&format!("<title>{}</title>", "Lien WAN coupé à Dakar"), "")
                .replace(&format!("<title>{TITLE}</title>"), ""),
            "missing <title>",
        ),
        (
            "bad value",
            good.replace(
                "<criticality>red</criticality>",
                "<criticality>pink</criticality>",
            ),
            "`pink` is not green, orange or red",
        ),
        (
            "bad base64",
            good.replacen(
                "<data encoding=\"base64\">",
                "<data encoding=\"base64\">!!",
                1,
            ),
            "invalid base64",
        ),
        ("executable", executable, "journal été.txt"),
        ("duplicate", duplicate, &reference),
    ];
    for (what, body, expected) in cases {
        let a = raw(
            &app,
            test::TestRequest::post()
                .uri("/api/v1/incidents/archives/import")
                .insert_header(("Authorization", format!("Bearer {}", h.tokens["operator"])))
                .insert_header(("Content-Type", "application/xml"))
                .set_payload(body),
        )
        .await;
        assert_eq!(a.status, 400, "{what}: {:?}", a.body);
        assert!(a.body.to_string().contains(expected), "{what}: {}", a.body);
        assert_eq!(
            count(&h.store, "SELECT COUNT(*) FROM incidents").await,
            incidents,
            "{what}"
        );
        assert_eq!(
            count(&h.store, "SELECT COUNT(*) FROM incident_events").await,
            events,
            "{what}"
        );
        assert_eq!(attachment_files(&h.data_dir()), files, "{what}");
    }
    assert!(
        model::get_by_reference(&h.store, "2001/NET/1")
            .await
            .unwrap()
            .is_none()
    );
}

async fn session(h: &Hub, login: &str, role: Role) -> (String, String) {
    let actor = Actor {
        user_id: h.ids[login],
        login: login.into(),
        role,
    };
    let token = vigie_auth::session::open(
        &h.store,
        &actor,
        None,
        None,
        SessionPolicy::default(),
        false,
    )
    .await
    .expect("session");
    let csrf: String = vigie_core::on_pool!(&h.store, pool => sqlx::query_scalar(
        "SELECT csrf FROM sessions WHERE user_id = $1 ORDER BY id DESC LIMIT 1")
        .bind(h.ids[login])
        .fetch_one(pool).await)
    .unwrap();
    (format!("vigie_session={token}"), csrf)
}

async fn page<S>(app: &S, cookie: &str, method: &str, uri: &str, form: Option<String>) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let mut req = if method == "GET" {
        test::TestRequest::get()
    } else {
        test::TestRequest::post()
    }
    .uri(uri)
    .insert_header(("Cookie", cookie.to_owned()))
    .insert_header(("Accept", "text/html"));
    if let Some(f) = form {
        req = req
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(f);
    }
    raw(app, req).await
}

#[tokio::test]
async fn each_route_checks_its_permission() {
    let h = Hub::new().await;
    let app = app(&h).await;
    let id = rich_incident(&app, &h, true).await;
    closed_days_ago(&h, id, 365).await;
    let tok = |l: &str| Some(h.tokens[l].as_str());

    // Print and export: anyone who sees incidents; not the administrator (no incidents menu).
    for login in ["operator", "manager", "oncall", "user"] {
        for url in [
            format!("/api/v1/incidents/{id}/pdf"),
            format!("/api/v1/incidents/{id}/xml"),
            format!("/api/v1/incidents/export.xml?ids={id}"),
        ] {
            assert_eq!(
                call(&app, tok(login), "GET", &url, None).await.status,
                200,
                "{login} {url}"
            );
        }
    }
    assert_eq!(
        call(
            &app,
            tok("admin"),
            "GET",
            &format!("/api/v1/incidents/{id}/pdf"),
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        call(
            &app,
            None,
            "GET",
            &format!("/api/v1/incidents/{id}/pdf"),
            None
        )
        .await
        .status,
        401
    );
    // The archives: the operator and the administrator only.
    for login in ["manager", "oncall", "user"] {
        assert_eq!(
            call(&app, tok(login), "GET", "/api/v1/incidents/archives", None)
                .await
                .status,
            403,
            "{login}"
        );
        assert_eq!(
            call(
                &app,
                tok(login),
                "POST",
                "/api/v1/incidents/archives/run",
                None
            )
            .await
            .status,
            403,
            "{login}"
        );
        let a = raw(
            &app,
            test::TestRequest::post()
                .uri("/api/v1/incidents/archives/import")
                .insert_header(("Authorization", format!("Bearer {}", h.tokens[login])))
                .set_payload("<incidents version=\"1\"/>"),
        )
        .await;
        assert_eq!(a.status, 403, "{login}");
    }
    assert_eq!(
        call(&app, None, "GET", "/api/v1/incidents/archives", None)
            .await
            .status,
        401
    );
    assert_eq!(
        call(
            &app,
            tok("admin"),
            "GET",
            "/api/v1/incidents/archives",
            None
        )
        .await
        .status,
        200
    );
    // Nothing was archived by the refused runs.
    assert!(model::get(&h.store, id).await.unwrap().is_some());

    // Console: the user prints; the archives page is refused to them, shown to the operator.
    let (user, _) = session(&h, "user", Role::User).await;
    // The incident's page links to its sheet and its export.
    let a = page(&app, &user, "GET", &format!("/incidents/{id}"), None).await;
    let html = String::from_utf8_lossy(&a.bytes).into_owned();
    assert!(
        html.contains(&format!("href=\"/incidents/{id}/pdf\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/incidents/{id}/xml?attachments=1\"")),
        "{html}"
    );
    let a = page(&app, &user, "GET", &format!("/incidents/{id}/pdf"), None).await;
    assert_eq!(a.status, 200);
    assert!(a.bytes.starts_with(b"%PDF"));
    let a = page(&app, &user, "GET", &format!("/incidents/{id}/xml"), None).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        page(&app, &user, "GET", "/incidents/archives", None)
            .await
            .status,
        403
    );
    let (opc, csrf) = session(&h, "operator", Role::Operator).await;
    let a = page(&app, &opc, "GET", "/incidents/archives", None).await;
    assert_eq!(a.status, 200);
    let html = String::from_utf8_lossy(&a.bytes).into_owned();
    assert!(html.contains("data-test=\"no-archives\""), "{html}");
    // Run now: refused without the CSRF token, done with it.
    assert_eq!(
        page(
            &app,
            &opc,
            "POST",
            "/incidents/archives/run",
            Some(String::new())
        )
        .await
        .status,
        403
    );
    assert!(model::get(&h.store, id).await.unwrap().is_some());
    let a = page(
        &app,
        &opc,
        "POST",
        "/incidents/archives/run",
        Some(format!("_csrf={csrf}")),
    )
    .await;
    assert_eq!(a.status, 303);
    assert!(model::get(&h.store, id).await.unwrap().is_none());
    let a = page(&app, &opc, "GET", "/incidents/archives", None).await;
    let html = String::from_utf8_lossy(&a.bytes).into_owned();
    let name = archive::list(&h.data_dir()).await.unwrap()[0].name.clone();
    assert!(html.contains(&name), "{html}");
    assert!(html.contains("data-test=\"flash\""), "{html}");
    // Re-import from the list.
    let a = page(
        &app,
        &opc,
        "POST",
        &format!("/incidents/archives/{name}/import"),
        Some(format!("_csrf={csrf}")),
    )
    .await;
    assert_eq!(a.status, 303);
    assert_eq!(
        count(
            &h.store,
            "SELECT COUNT(*) FROM incidents WHERE state = 'archived'"
        )
        .await,
        1
    );
    // Upload form: a malformed file comes back as a message, nothing written.
    let body = format!(
        "--B\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.xml\"\r\nContent-Type: application/xml\r\n\r\n<incidents version=\"1\"><incident>\r\n--B--\r\n"
    );
    let a = raw(
        &app,
        test::TestRequest::post()
            .uri("/incidents/archives/import")
            .insert_header(("Cookie", opc.clone()))
            .insert_header(("Content-Type", "multipart/form-data; boundary=B"))
            .set_payload(body),
    )
    .await;
    assert_eq!(a.status, 303);
    let a = page(&app, &opc, "GET", "/incidents/archives", None).await;
    let html = String::from_utf8_lossy(&a.bytes).into_owned();
    assert!(html.contains("flash-error"), "{html}");
    assert_eq!(count(&h.store, "SELECT COUNT(*) FROM incidents").await, 1);
}
