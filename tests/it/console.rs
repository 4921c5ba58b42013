//! The console end to end: the real binary, driven like a browser without JavaScript (cookies,
//! forms, CSRF tokens), against the real store.

use std::time::Instant;

use vigie_core::on_pool;

use crate::support::{Browser, Env, Hub, hidden_value, menu_codes};

const PASSWORD: &str = "a-long-enough-password";

async fn create_user(env: &Env, login: &str, role: &str) {
    let (code, _, err) = env
        .run(
            &[
                "user",
                "create",
                "--login",
                login,
                "--role",
                role,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 0, "user create {login}: {err}");
}

fn location(answer: &crate::support::Answer) -> String {
    answer.header("location").unwrap_or_default().to_owned()
}

async fn logged_in<'a>(hub: &'a Hub, login: &str) -> Browser<'a> {
    let mut b = Browser::new(hub);
    let answer = b.login(login, PASSWORD).await;
    assert_eq!(answer.status, 303, "login {login}: {}", answer.body);
    assert_eq!(location(&answer), "/");
    let home = b.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    b
}

/// `(id, code)` of every menu checkbox of the user form.
fn menu_boxes(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("name=\"menu\" value=\"") {
        rest = &rest[i + 19..];
        let id = rest[..rest.find('"').unwrap_or(0)].to_owned();
        let code_at = rest.find("data-menu-code=\"").map(|j| j + 16).unwrap_or(0);
        let code = rest[code_at..code_at + rest[code_at..].find('"').unwrap_or(0)].to_owned();
        out.push((id, code));
    }
    out
}

/// The navigation each role sees by default: DOMAIN.md's menu matrix, leaves with a page.
fn matrix_menus(role: &str) -> Vec<&'static str> {
    let all_roles: &[&str] = &["admin", "operator", "manager", "oncall", "user"];
    let table: &[(&str, &[&str])] = &[
        ("admin.users", &["admin"]),
        ("admin.menus", &["admin"]),
        ("admin.oncall.planning", all_roles),
        ("admin.oncall.edit", &["admin"]),
        ("admin.sources", &["admin"]),
        ("admin.security", &["admin"]),
        ("admin.audit", &["admin"]),
        ("admin.notifications", &["admin"]),
        ("incidents.archives", &["operator"]),
        ("supervision.apps", &["operator", "manager"]),
        ("supervision.equipment", &["operator", "manager"]),
        ("supervision.unavailability", &["operator", "manager"]),
        ("supervision.equipment_edit", &["operator"]),
        ("supervision.statistics", &["operator", "manager"]),
        ("supervision.reports", &["operator", "manager"]),
        ("supervision.equipment_admin", &["manager"]),
        ("supervision.logs", &["operator", "manager"]),
        ("supervision.hosts", &["operator", "manager"]),
        ("alerts.list", &["operator", "manager"]),
        ("alerts.search", &["operator", "manager"]),
        ("incidents.open", &["operator", "manager", "oncall", "user"]),
        ("incidents.list", &["operator", "manager", "oncall", "user"]),
        ("kb", &["operator", "manager", "oncall", "user"]),
    ];
    let mut menus: Vec<&str> = table
        .iter()
        .filter(|(_, roles)| roles.contains(&role))
        .map(|(code, _)| *code)
        .collect();
    menus.sort();
    menus
}

async fn outbox(env: &Env) -> Vec<(String, String, String, String)> {
    let store = env.db.store().await.expect("store");
    let rows: Vec<(String, String, String, String)> = on_pool!(&store, pool => sqlx::query_as(
        "SELECT recipient, subject, body_text, kind FROM outbox ORDER BY id",
    )
    .fetch_all(pool)
    .await)
    .expect("outbox");
    store.close().await;
    rows
}

async fn audit_actions(env: &Env, label: &str) -> Vec<String> {
    let store = env.db.store().await.expect("store");
    let rows: Vec<String> = on_pool!(&store, pool => sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE target_label = $1 ORDER BY id",
    )
    .bind(label)
    .fetch_all(pool)
    .await)
    .expect("audit");
    store.close().await;
    rows
}

async fn sql(env: &Env, statement: &str) {
    let store = env.db.store().await.expect("store");
    on_pool!(&store, pool => sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(pool).await.map(drop))
        .expect(statement);
    store.close().await;
}

fn activation_path(body: &str) -> String {
    let start = body
        .find("/activate/")
        .expect("activation link in the mail");
    body[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_new_user_gets_an_activation_mail_sets_a_password_and_sees_the_matrix_menus() {
    let env = Env::new().await;
    create_user(&env, "chief", "admin").await;
    let hub = env.serve().await;
    let mut admin = logged_in(&hub, "chief").await;
    assert_eq!(
        menu_codes(&admin.get("/").await.body),
        matrix_menus("admin")
    );

    // The form offers every menu; the administrator ticks the manager's defaults.
    let form = admin.get("/admin/users/new").await;
    assert_eq!(form.status, 200);
    let boxes = menu_boxes(&form.body);
    assert!(boxes.len() >= 20, "{boxes:?}");
    let wanted = matrix_menus("manager");
    let mut fields: Vec<(&str, &str)> = vec![
        ("login", "awa.diop"),
        ("matricule", "M-042"),
        ("last_name", "Diop"),
        ("first_name", "Awa"),
        ("email", "awa.diop@example.org"),
        ("phone", "+221 33 000 00 00"),
        ("job_title", "Responsable réseau"),
        ("department", "Réseaux & télécoms"),
        ("role", "manager"),
        ("lang", "fr"),
        ("timezone", "Africa/Dakar"),
    ];
    for (id, code) in &boxes {
        // Also tick one the manager's role may not have: the server must ignore it.
        if wanted.contains(&code.as_str()) || code == "admin.users" || code == "alerts.actions" {
            fields.push(("menu", id.as_str()));
        }
    }
    let created = admin.post("/admin/users/new", &fields).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let user_page = location(&created);
    assert!(user_page.starts_with("/admin/users/"), "{user_page}");

    // The activation mail waits in the outbox, in the user's language.
    let mails = outbox(&env).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (to, subject, body, kind) = &mails[0];
    assert_eq!(to, "awa.diop@example.org");
    assert_eq!(kind, "user.activation");
    assert_eq!(subject, "Votre compte Vigie");
    assert!(
        body.contains("Bonjour Awa Diop") && body.contains("awa.diop"),
        "{body}"
    );
    let link = activation_path(body);

    // Before activation the account cannot log in (same neutral answer).
    let mut awa = Browser::new(&hub);
    assert_eq!(awa.login("awa.diop", PASSWORD).await.status, 401);

    let page = awa.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("data-test=\"activate-login\">awa.diop<"),
        "{}",
        page.body
    );
    let short = awa
        .post(&link, &[("password", "short"), ("confirm", "short")])
        .await;
    assert_eq!(short.status, 422);
    assert!(short.body.contains("data-error=\"password\""));
    let done = awa
        .post(&link, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(location(&done), "/login?activated=1");
    // Single use.
    let again = awa.get(&link).await;
    assert!(
        again.body.contains("data-test=\"link-invalid\""),
        "{}",
        again.body
    );

    let answer = awa.login("awa.diop", PASSWORD).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let home = awa.get("/").await;
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("lang=\"fr\""),
        "the user's language wins"
    );
    assert!(home.body.contains("Responsable"), "role shown in French");
    assert_eq!(menu_codes(&home.body), wanted, "exactly the matrix");
    assert_eq!(
        awa.get("/admin/users").await.status,
        403,
        "a ticked menu beyond the role grants nothing"
    );

    // The administrator edits her: a mail tells her, the audit keeps before and after.
    let edit = admin.get(&format!("{user_page}/edit")).await;
    assert_eq!(edit.status, 200);
    let mut fields: Vec<(&str, &str)> = vec![
        ("login", "awa.diop"),
        ("matricule", "M-042"),
        ("last_name", "Diop"),
        ("first_name", "Awa"),
        ("email", "awa.diop@example.org"),
        ("department", "Systèmes"),
        ("role", "manager"),
        ("lang", "fr"),
        ("timezone", "Africa/Dakar"),
    ];
    // Untick the equipment administration.
    for (id, code) in &boxes {
        if wanted.contains(&code.as_str()) && code != "supervision.equipment_admin" {
            fields.push(("menu", id.as_str()));
        }
    }
    let saved = admin.post(&format!("{user_page}/edit"), &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let mails = outbox(&env).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].3, "user.changed");
    let home = awa.get("/").await;
    assert!(!menu_codes(&home.body).contains(&"supervision.equipment_admin".to_owned()));
    assert_eq!(
        awa.get("/supervision/equipment/admin").await.status,
        403,
        "the server enforces the choice"
    );

    let actions = audit_actions(&env, "awa.diop").await;
    for step in [
        "user.create",
        "auth.login_failed",
        "user.activate",
        "auth.login",
        "user.update",
    ] {
        assert!(actions.contains(&step.to_owned()), "{step} in {actions:?}");
    }
    let audit = admin.get("/admin/audit?q=awa.diop").await;
    assert_eq!(audit.status, 200);
    for step in ["user.create", "user.activate", "user.update"] {
        assert!(
            audit.body.contains(&format!("data-action=\"{step}\"")),
            "{step} on the audit page"
        );
    }
    assert!(audit.body.contains("Syst"), "the after state is shown");
    hub.stop().await;
}

/// Every console route for every role: allowed, 403, or (no session) the login page.
#[tokio::test]
async fn every_route_answers_every_role_as_the_matrix_says() {
    let env = Env::new().await;
    let roles = ["admin", "operator", "manager", "oncall", "user"];
    for role in roles {
        create_user(&env, &format!("u-{role}"), role).await;
    }
    let hub = env.serve().await;
    let everyone: &[&str] = &roles;
    let people: &[&str] = &["operator", "manager", "oncall", "user"];
    let watchers: &[&str] = &["operator", "manager"];
    let admin: &[&str] = &["admin"];
    let gets: &[(&str, &[&str])] = &[
        ("/", everyone),
        ("/account", everyone),
        ("/account/password", everyone),
        ("/account/totp", everyone),
        ("/account/tokens", everyone),
        ("/admin/users", admin),
        ("/admin/users/new", admin),
        ("/admin/users/1", admin),
        ("/admin/users/1/edit", admin),
        ("/admin/menus", admin),
        ("/admin/menus/new", admin),
        ("/admin/menus/1/edit", admin),
        ("/admin/menus/2/users", admin),
        ("/admin/audit", admin),
        ("/admin/security", admin),
        ("/admin/oncall", admin),
        ("/admin/sources", admin),
        ("/admin/sources/new", admin),
        ("/admin/notifications", admin),
        ("/admin/notifications/templates", admin),
        ("/admin/oncall/rules", admin),
        ("/account/notifications", everyone),
        ("/oncall", everyone),
        ("/supervision/apps", watchers),
        ("/supervision/equipment", watchers),
        ("/supervision/unavailability", watchers),
        ("/supervision/equipment/edit", &["operator"]),
        ("/supervision/statistics", watchers),
        ("/supervision/reports", watchers),
        ("/supervision/equipment/admin", &["manager"]),
        ("/hosts", watchers),
        ("/logs", watchers),
        ("/alerts", watchers),
        ("/alerts/search", watchers),
        ("/incidents", people),
        ("/incidents/new", people),
        ("/incidents/archives", &["operator", "admin"]),
        ("/kb", people),
    ];
    let posts: &[(&str, &[&str])] = &[
        ("/admin/users/new", admin),
        ("/admin/users/2/edit", admin),
        ("/admin/users/2/disable", admin),
        ("/admin/users/2/enable", admin),
        ("/admin/users/2/activation", admin),
        ("/admin/menus/new", admin),
        ("/admin/menus/3/edit", admin),
        ("/admin/menus/3/delete", admin),
        ("/admin/menus/3/users", admin),
        ("/admin/security", admin),
    ];
    let mut anonymous = Browser::new(&hub);
    let mut failures = Vec::new();
    for (path, _) in gets {
        let answer = anonymous.get(path).await;
        if answer.status != 303 || !location(&answer).starts_with("/login?next=") {
            failures.push(format!(
                "anonymous GET {path}: {} {}",
                answer.status,
                location(&answer)
            ));
        }
    }
    for (path, _) in posts {
        let answer = anonymous.post_raw(path, &[("x", "1")]).await;
        if answer.status != 303 || !location(&answer).starts_with("/login") {
            failures.push(format!("anonymous POST {path}: {}", answer.status));
        }
    }
    for role in roles {
        let mut b = logged_in(&hub, &format!("u-{role}")).await;
        for (path, allowed) in gets {
            let answer = b.get(path).await;
            let expected = if allowed.contains(&role) { 200 } else { 403 };
            if answer.status != expected {
                failures.push(format!(
                    "{role} GET {path}: {} (expected {expected})",
                    answer.status
                ));
            }
        }
        for (path, allowed) in posts {
            if allowed.contains(&role) {
                // Allowed, but without the CSRF token: refused before anything changes.
                let answer = b.post_raw(path, &[("label_en", "x")]).await;
                if answer.status != 403 || !answer.body.contains("data-test=\"error-message\"") {
                    failures.push(format!(
                        "{role} POST {path} without CSRF: {}",
                        answer.status
                    ));
                }
            } else {
                let answer = b.post(path, &[("label_en", "x")]).await;
                if answer.status != 403 {
                    failures.push(format!(
                        "{role} POST {path}: {} (expected 403)",
                        answer.status
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing above changed a user or a menu.
    let actions = audit_actions(&env, "u-operator").await;
    assert!(
        actions.iter().all(|a| a.starts_with("auth.")),
        "{actions:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn logins_fail_alike_lock_after_repeated_failures_and_sessions_are_guarded() {
    let env = Env::new().await;
    create_user(&env, "op", "operator").await;
    create_user(&env, "victim", "user").await;
    let hub = env.serve().await;

    // Wrong password and unknown login: the same answer, the same work.
    let mut b = Browser::new(&hub);
    let mut wrong = std::time::Duration::ZERO;
    let mut unknown = std::time::Duration::ZERO;
    let mut messages = Vec::new();
    for _ in 0..2 {
        let t = Instant::now();
        let a = b.login("op", "not-the-password").await;
        wrong += t.elapsed();
        assert_eq!(a.status, 401);
        messages.push(
            a.body
                .split("data-test=\"login-error\">")
                .nth(1)
                .map(|s| s[..s.find('<').unwrap_or(0)].to_owned()),
        );
        let t = Instant::now();
        let a = b.login("nobody-here", "not-the-password").await;
        unknown += t.elapsed();
        assert_eq!(a.status, 401);
        messages.push(
            a.body
                .split("data-test=\"login-error\">")
                .nth(1)
                .map(|s| s[..s.find('<').unwrap_or(0)].to_owned()),
        );
    }
    assert!(
        messages.iter().all(|m| m.is_some() && *m == messages[0]),
        "{messages:?}"
    );
    assert!(
        unknown * 3 >= wrong,
        "an unknown login costs a password check too: {unknown:?} vs {wrong:?}"
    );
    // The login typed is kept in the form, escaped.
    let a = b.login("<b>x</b>", "pw").await;
    assert!(
        a.body.contains("value=\"&lt;b&gt;x&lt;&#x2F;b&gt;\""),
        "{}",
        a.body
    );

    // Five wrong passwords lock the account: then even the right one is refused.
    let mut v = Browser::new(&hub);
    for _ in 0..5 {
        assert_eq!(v.login("victim", "wrong-password-here").await.status, 401);
    }
    assert_eq!(v.login("victim", PASSWORD).await.status, 401);
    assert!(
        audit_actions(&env, "victim")
            .await
            .contains(&"user.locked".to_owned())
    );
    sql(
        &env,
        "UPDATE users SET locked_until = NULL WHERE login = 'victim'",
    )
    .await;
    assert_eq!(
        v.login("victim", PASSWORD).await.status,
        303,
        "unlocked once the delay is over"
    );

    // A form without the CSRF token is refused and changes nothing.
    let mut nocsrf = Browser::new(&hub);
    nocsrf.get("/login").await;
    let a = nocsrf
        .post_raw("/login", &[("login", "op"), ("password", PASSWORD)])
        .await;
    assert_eq!(a.status, 403);
    assert!(nocsrf.cookie("vigie_session").is_none());

    // First session, with the cookie's attributes and the security headers.
    let mut first = Browser::new(&hub);
    first.get("/login").await;
    let a = first
        .post(
            "/login",
            &[
                ("login", "op"),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(location(&a), "/account", "back where the login was asked");
    let set_cookie = a
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("vigie_session="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let page = first.get("/account").await;
    assert_eq!(page.status, 200);
    let csp = page
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.header("referrer-policy").is_some());
    let before = first.cookie("vigie_session").map(str::to_owned);
    let nochange = first
        .post_raw("/account", &[("lang", "en"), ("timezone", "Europe/Paris")])
        .await;
    assert_eq!(nochange.status, 403);
    assert!(!first.get("/account").await.body.contains("Europe/Paris"));

    // Second login while the first is open: asked; cancel keeps the first.
    let mut second = Browser::new(&hub);
    let a = second.login("op", PASSWORD).await;
    assert_eq!(a.status, 303);
    assert!(
        location(&a).starts_with("/login/confirm"),
        "{}",
        location(&a)
    );
    let prompt = second.get(&location(&a)).await;
    assert!(prompt.body.contains("data-test=\"already-connected\""));
    let cancel = second
        .post("/login/confirm", &[("choice", "cancel"), ("next", "/")])
        .await;
    assert_eq!(location(&cancel), "/login?cancelled=1");
    assert_eq!(
        first.get("/").await.status,
        200,
        "the first session lives on"
    );
    // Continue here: a new session id; the first one ends.
    let a = second.login("op", PASSWORD).await;
    second.get(&location(&a)).await;
    let cont = second
        .post("/login/confirm", &[("choice", "continue"), ("next", "/")])
        .await;
    assert_eq!(cont.status, 303);
    assert_eq!(location(&cont), "/");
    assert_ne!(
        second.cookie("vigie_session").map(str::to_owned),
        before,
        "a new session id at login"
    );
    assert_eq!(second.get("/").await.status, 200);
    let ended = first.get("/").await;
    assert_eq!(ended.status, 303);
    assert!(
        location(&ended).contains("expired=1"),
        "{}",
        location(&ended)
    );

    // Idle timeout: a session unused too long ends.
    sql(&env, "UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00Z' WHERE ended_at IS NULL AND user_id = (SELECT id FROM users WHERE login = 'victim')").await;
    let idle = v.get("/").await;
    assert_eq!(idle.status, 303);
    assert!(location(&idle).contains("expired=1"));

    // Logout ends the session for good.
    let out = second.post("/logout", &[]).await;
    assert_eq!(location(&out), "/login?bye=1");
    assert!(second.cookie("vigie_session").is_none());
    let old = before.expect("first cookie");
    second.set_cookie("vigie_session", &old);
    assert_eq!(second.get("/").await.status, 303);

    let actions = audit_actions(&env, "op").await;
    for step in [
        "auth.login_failed",
        "auth.login",
        "auth.login_cancelled",
        "auth.logout",
    ] {
        assert!(actions.contains(&step.to_owned()), "{step} in {actions:?}");
    }
    hub.stop().await;
}

fn between<'b>(html: &'b str, start: &str, end: &str) -> &'b str {
    let i = html.find(start).map(|i| i + start.len()).unwrap_or(0);
    &html[i..i + html[i..].find(end).unwrap_or(0)]
}

#[tokio::test]
async fn a_second_factor_is_enrolled_then_asked_and_can_be_required_per_role() {
    let env = Env::new().await;
    create_user(&env, "chief", "admin").await;
    create_user(&env, "op", "operator").await;
    create_user(&env, "mgr", "manager").await;
    let hub = env.serve().await;
    let mut op = logged_in(&hub, "op").await;
    let page = op.get("/account/totp").await;
    assert!(page.body.contains("<svg"), "a QR code is drawn");
    let secret = between(&page.body, "data-test=\"totp-secret\">", "<").to_owned();
    assert!(secret.len() >= 32, "{secret}");
    let wrong = op.post("/account/totp", &[("code", "000000")]).await;
    assert_eq!(wrong.status, 422);
    let code = vigie_auth::login::current_code(&secret).expect("code");
    let codes_page = op.post("/account/totp", &[("code", &code)]).await;
    assert_eq!(codes_page.status, 200, "{}", codes_page.body);
    let recovery: Vec<String> = between(&codes_page.body, "data-test=\"recovery-codes\">", "</ul>")
        .split("<code>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap_or(0)].to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    op.post("/logout", &[]).await;

    // The password alone is not enough any more.
    let mut again = Browser::new(&hub);
    let a = again.login("op", PASSWORD).await;
    assert!(location(&a).starts_with("/login/totp"), "{}", location(&a));
    assert_eq!(again.get("/").await.status, 303, "no session yet");
    again.get(&location(&a)).await;
    let bad = again
        .post("/login/totp", &[("code", "123456"), ("next", "/")])
        .await;
    assert_eq!(bad.status, 401);
    // The enrolment code's time step was used: a recovery code logs in, once.
    let ok = again
        .post("/login/totp", &[("code", &recovery[0]), ("next", "/")])
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(again.get("/").await.status, 200);
    let mut third = Browser::new(&hub);
    let a = third.login("op", PASSWORD).await;
    third.get(&location(&a)).await;
    let reused = third
        .post("/login/totp", &[("code", &recovery[0]), ("next", "/")])
        .await;
    assert_eq!(reused.status, 401, "a recovery code works once");

    // The administrator requires a second factor for managers: the manager must enrol first.
    let mut admin = logged_in(&hub, "chief").await;
    admin.get("/admin/security").await;
    let saved = admin.post("/admin/security", &[("totp", "manager")]).await;
    assert_eq!(saved.status, 303);
    let mut mgr = Browser::new(&hub);
    assert_eq!(mgr.login("mgr", PASSWORD).await.status, 303);
    let gated = mgr.get("/alerts").await;
    assert_eq!(gated.status, 303);
    assert_eq!(location(&gated), "/account/totp");
    assert_eq!(mgr.get("/account/totp").await.status, 200);
    assert!(
        audit_actions(&env, "op")
            .await
            .contains(&"user.totp_enable".to_owned())
    );
    hub.stop().await;
}

#[tokio::test]
async fn forms_keep_the_input_show_each_error_by_its_field_and_escape_html() {
    let env = Env::new().await;
    create_user(&env, "chief", "admin").await;
    let hub = env.serve().await;
    let mut admin = logged_in(&hub, "chief").await;
    admin.get("/admin/users/new").await;
    let long = "x".repeat(101);
    let bad = admin
        .post(
            "/admin/users/new",
            &[
                ("login", "new one"),
                ("last_name", &long),
                ("first_name", "Jean"),
                ("email", "not-a-mail"),
                ("department", "Ops\u{7}"),
                ("timezone", "Mars/Olympus"),
                ("role", "operator"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    for field in ["login", "last_name", "email", "department", "timezone"] {
        assert!(
            bad.body.contains(&format!("data-error=\"{field}\"")),
            "{field} error shown"
        );
    }
    assert!(bad.body.contains("value=\"new one\""), "input kept");
    assert!(bad.body.contains("value=\"Jean\""));

    // HTML in names is stored as text and shown escaped.
    let ok = admin
        .post(
            "/admin/users/new",
            &[
                ("login", "bob"),
                ("last_name", "<script>alert(1)</script>"),
                ("first_name", "<b>Bob</b>"),
                ("email", "bob@example.org"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let list = admin.get("/admin/users?q=bob").await;
    assert!(
        list.body.contains("&lt;b&gt;Bob&lt;&#x2F;b&gt;"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("<script>alert(1)"));
    // The same login twice: an error by the login field, nothing stored.
    admin.get("/admin/users/new").await;
    let dup = admin
        .post(
            "/admin/users/new",
            &[
                ("login", "bob"),
                ("last_name", "B"),
                ("first_name", "B"),
                ("email", "b2@example.org"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(dup.status, 422);
    assert!(dup.body.contains("data-error=\"login\""));
    assert_eq!(
        outbox(&env).await.len(),
        1,
        "one activation mail, for the one user created"
    );
    // Disabling (and enabling again) from the user's page.
    let list = admin.get("/admin/users?q=bob").await;
    let link = list.body.find("\" data-login=\"bob\"").expect("bob's link");
    let id: String = list.body[..link]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let disabled = admin.post(&format!("/admin/users/{id}/disable"), &[]).await;
    assert_eq!(disabled.status, 303);
    let page = admin.get(&format!("/admin/users/{id}")).await;
    assert!(
        page.body.contains("data-test=\"user-state\">disabled<"),
        "{}",
        page.body
    );
    assert_eq!(
        admin
            .post(&format!("/admin/users/{id}/enable"), &[])
            .await
            .status,
        303
    );
    assert_eq!(
        admin
            .post(&format!("/admin/users/{id}/remove"), &[])
            .await
            .status,
        404
    );

    // French, from the browser's language, when the user chose none.
    let mut fr = Browser::new(&hub);
    fr.lang = "fr-FR,fr;q=0.9,en;q=0.5";
    let page = fr.get("/login").await;
    assert!(page.body.contains("Identifiant") && page.body.contains("lang=\"fr\""));
    let missing = fr.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Cette page n"), "{}", missing.body);
    assert_eq!(
        hub.get("/api/v1/nothing", None).await.json()["error"],
        "no such route"
    );
    hub.stop().await;
}

#[tokio::test]
async fn api_tokens_made_in_the_console_carry_the_role_and_can_be_revoked() {
    let env = Env::new().await;
    create_user(&env, "mgr", "manager").await;
    let hub = env.serve().await;
    let mut b = logged_in(&hub, "mgr").await;
    b.get("/account/tokens").await;
    let made = b.post("/account/tokens", &[("label", "grafana")]).await;
    assert_eq!(made.status, 200);
    let token = between(&made.body, "data-test=\"new-token\">", "<").to_owned();
    assert!(token.starts_with("vgt_"), "{token}");
    assert_eq!(
        hub.get("/api/v1/alerts", Some(&token)).await.status,
        200,
        "a manager reads alerts"
    );
    let push = hub
        .post_json(
            "/api/v1/alerts",
            Some(&token),
            r#"{"source":"x","resource":"r","message":"m"}"#,
        )
        .await;
    assert_eq!(push.status, 403, "but does not push");
    let list = b.get("/account/tokens").await;
    assert!(
        list.body.contains("grafana") && !list.body.contains(&token),
        "shown once"
    );
    let id = hidden_value(&list.body, "_csrf").map(|_| ()).and_then(|_| {
        let at = list.body.find("/account/tokens/")? + 16;
        Some(list.body[at..at + list.body[at..].find('/')?].to_owned())
    });
    let id = id.expect("revoke form");
    let revoked = b.post(&format!("/account/tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(hub.get("/api/v1/alerts", Some(&token)).await.status, 401);
    let actions = audit_actions(&env, "grafana").await;
    assert_eq!(actions, ["token.create", "token.revoke"]);
    hub.stop().await;
}
