//! The `users` and `api_tokens` tables.

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigie_core::audit::{Actor, Entry};
use vigie_core::role::Role;
use vigie_core::secret::{hash_password, new_password, new_token, token_digest, verify_password};
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::time::now;
use vigie_core::{on_pool, on_tx};
use vigie_notify::Mail;

use crate::error::{AuthError, Problem};
use crate::guard::Caller;

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub login: String,
    pub role: Role,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// `None` creates an account that cannot log in until a password is set.
    pub password: Option<String>,
    pub must_change_password: bool,
}

/// The administrator made on the first start, with the password to show once.
#[derive(Debug)]
pub struct InitialAdmin {
    pub login: String,
    pub password: String,
}

const LOGIN_MAX: usize = 64;
const EMAIL_MAX: usize = 254;
const PASSWORD_MIN: usize = 10;
const PASSWORD_MAX: usize = 1024;
const LABEL_MAX: usize = 100;

fn validate(user: &NewUser) -> Result<(), AuthError> {
    let login = &user.login;
    if login.is_empty() || login.chars().count() > LOGIN_MAX {
        return Err(AuthError::Invalid {
            field: "login",
            problem: format!("must be 1 to {LOGIN_MAX} characters"),
        });
    }
    if !login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(AuthError::Invalid {
            field: "login",
            problem: "may contain only letters, digits and . _ - @".into(),
        });
    }
    if let Some(email) = &user.email {
        let plausible = email.len() <= EMAIL_MAX
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plausible {
            return Err(AuthError::Invalid {
                field: "email",
                problem: format!("`{email}` is not an email address"),
            });
        }
    }
    if let Some(password) = &user.password {
        let n = password.chars().count();
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
            return Err(AuthError::Invalid {
                field: "password",
                problem: format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
            });
        }
    }
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Creates a user; the login must be free.
pub async fn create_user(store: &Store, user: NewUser) -> Result<i64, AuthError> {
    validate(&user)?;
    let hash = user.password.as_deref().map(hash_password).transpose()?;
    let created_at = now();
    let result = on_pool!(store, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (login, role, email, display_name, password_hash, must_change_password, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&user.login)
    .bind(user.role.as_str())
    .bind(&user.email)
    .bind(&user.display_name)
    .bind(&hash)
    .bind(user.must_change_password)
    .bind(created_at)
    .fetch_one(pool)
    .await);
    match result {
        Ok(id) => Ok(id),
        Err(e) if is_unique_violation(&e) => Err(AuthError::LoginTaken(user.login)),
        Err(e) => Err(StoreError::from(e).into()),
    }
}

pub async fn count_users(store: &Store) -> Result<i64, AuthError> {
    let n = on_pool!(store, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await)
    .map_err(StoreError::from)?;
    Ok(n)
}

/// On a store with no user at all, creates the administrator `admin` with a one-time password
/// (to be changed at first login) and returns it so that it can be printed once. Safe when
/// several hub processes start together: only one of them creates it.
pub async fn ensure_initial_admin(store: &Store) -> Result<Option<InitialAdmin>, AuthError> {
    if count_users(store).await? > 0 {
        return Ok(None);
    }
    let password = new_password()?;
    let hash = hash_password(&password)?;
    let created_at = now();
    let inserted = on_pool!(store, pool => sqlx::query(
        "INSERT INTO users (login, role, password_hash, must_change_password, created_at)
         SELECT 'admin', 'admin', $1, TRUE, $2
         WHERE NOT EXISTS (SELECT 1 FROM users)
         ON CONFLICT (login) DO NOTHING",
    )
    .bind(&hash)
    .bind(created_at)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok((inserted == 1).then(|| InitialAdmin {
        login: "admin".into(),
        password,
    }))
}

/// Creates an API token for an enabled user and returns it; only its digest is stored.
pub async fn create_token(
    store: &Store,
    login: &str,
    label: Option<&str>,
) -> Result<String, AuthError> {
    if let Some(label) = label
        && (label.chars().count() > LABEL_MAX || label.chars().any(char::is_control))
    {
        return Err(AuthError::Invalid {
            field: "label",
            problem: format!("must be one line of at most {LABEL_MAX} characters"),
        });
    }
    let user: Option<(i64, bool)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, disabled FROM users WHERE login = $1",
    )
    .bind(login)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let (user_id, disabled) = user.ok_or_else(|| AuthError::UnknownLogin(login.to_owned()))?;
    if disabled {
        return Err(AuthError::Disabled(login.to_owned()));
    }
    let token = new_token("vgt")?;
    let created_at: DateTime<Utc> = now();
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO api_tokens (user_id, digest, label, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(token_digest(&token))
    .bind(label)
    .bind(created_at)
    .execute(pool)
    .await
    .map(drop))
    .map_err(StoreError::from)?;
    Ok(token)
}

/// The enabled user a live token belongs to.
pub async fn find_by_token(store: &Store, token: &str) -> Result<Option<Caller>, AuthError> {
    let row: Option<(i64, String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT u.id, u.login, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.digest = $1 AND t.revoked_at IS NULL AND NOT u.disabled",
    )
    .bind(token_digest(token))
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    match row {
        None => Ok(None),
        Some((user_id, login, role)) => match role.parse::<Role>() {
            Ok(role) => Ok(Some(Caller {
                user_id,
                login,
                role,
                permissions: crate::menus::effective_permissions(store, user_id, role).await?,
            })),
            Err(e) => {
                tracing::error!(%login, error = %e, "A stored user has an unknown role.");
                Ok(None)
            }
        },
    }
}

/// A user as the console shows and edits it. Never carries a secret.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub role: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub matricule: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub phone: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub lang: Option<String>,
    pub timezone: Option<String>,
    pub disabled: bool,
    pub must_change_password: bool,
    pub totp_enabled: bool,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

impl User {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::User)
    }

    /// "First Last", else the display name, else the login.
    pub fn name(&self) -> String {
        let parts: Vec<&str> = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            parts.join(" ")
        } else {
            self.display_name
                .clone()
                .unwrap_or_else(|| self.login.clone())
        }
    }

    /// The fields the audit log keeps before and after a change.
    pub fn audit_view(&self) -> serde_json::Value {
        serde_json::json!({
            "login": self.login, "role": self.role, "email": self.email,
            "matricule": self.matricule, "last_name": self.last_name, "first_name": self.first_name,
            "phone": self.phone, "job_title": self.job_title, "department": self.department,
            "lang": self.lang, "timezone": self.timezone, "disabled": self.disabled,
        })
    }
}

const USER_COLUMNS: &str =
    "id, login, role, email, display_name, matricule, last_name, first_name, phone,
    job_title, department, lang, timezone, disabled, must_change_password, totp_enabled,
    password_hash IS NOT NULL AS has_password, created_at, updated_at, last_login_at, locked_until";

pub async fn get_user(store: &Store, id: i64) -> Result<Option<User>, AuthError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let user = on_pool!(store, pool => sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)
    .map_err(StoreError::from)?;
    Ok(user)
}

async fn get_user_tx(tx: &mut StoreTx, id: i64) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    Ok(
        on_tx!(tx, conn => sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await)?,
    )
}

pub async fn get_user_by_login(store: &Store, login: &str) -> Result<Option<User>, AuthError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
    let user = on_pool!(store, pool => sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql))
        .bind(login)
        .fetch_optional(pool)
        .await)
    .map_err(StoreError::from)?;
    Ok(user)
}

/// Users matching a text (login, names, matricule, email, department), by login; `after` pages.
pub async fn search_users(
    store: &Store,
    text: Option<&str>,
    include_disabled: bool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<User>, AuthError> {
    let pattern = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| format!("%{}%", vigie_core::store::like_escape(&t.to_lowercase())));
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users
         WHERE ($1 OR NOT disabled)
           AND ($2 IS NULL OR LOWER(login) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(last_name, '')) LIKE $2 ESCAPE '\\'
                OR LOWER(COALESCE(first_name, '')) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(matricule, '')) LIKE $2 ESCAPE '\\'
                OR LOWER(COALESCE(email, '')) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(department, '')) LIKE $2 ESCAPE '\\')
           AND ($3 IS NULL OR login > $3)
         ORDER BY login LIMIT $4"
    );
    let users = on_pool!(store, pool => sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql))
        .bind(include_disabled)
        .bind(&pattern)
        .bind(after)
        .bind(limit.clamp(1, 500))
        .fetch_all(pool)
        .await)
    .map_err(StoreError::from)?;
    Ok(users)
}

/// The identity fields of a person, as typed in the administrator's form.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PersonForm {
    pub login: String,
    pub matricule: String,
    pub last_name: String,
    pub first_name: String,
    pub email: String,
    pub phone: String,
    pub job_title: String,
    pub department: String,
    pub role: String,
    pub lang: String,
    pub timezone: String,
}

/// A checked person: trimmed, empty fields as `None`.
#[derive(Clone, Debug)]
pub struct Person {
    pub login: String,
    pub matricule: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub email: String,
    pub phone: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub role: Role,
    pub lang: Option<String>,
    pub timezone: Option<String>,
    /// The domains they belong to, saved in the same transaction; `None` leaves them as they
    /// are. The caller checks them against the configured list.
    pub domains: Option<Vec<String>>,
}

const TEXT_MAX: usize = 100;

fn optional(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Checks the form; every problem with its field. Names may hold any printable text (it is
/// shown escaped); control characters and over-long values are refused.
pub fn check_person(
    form: &PersonForm,
    valid_timezone: &dyn Fn(&str) -> bool,
) -> Result<Person, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    let login = form.login.trim();
    if login.is_empty() || login.chars().count() > LOGIN_MAX {
        problems.push(("login", "login_length"));
    } else if !login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        problems.push(("login", "login_chars"));
    }
    let texts = [
        ("matricule", &form.matricule),
        ("last_name", &form.last_name),
        ("first_name", &form.first_name),
        ("phone", &form.phone),
        ("job_title", &form.job_title),
        ("department", &form.department),
    ];
    for (field, value) in texts {
        if value.trim().chars().count() > TEXT_MAX {
            problems.push((field, "text_too_long"));
        } else if value.chars().any(char::is_control) {
            problems.push((field, "control_chars"));
        }
    }
    if form.last_name.trim().is_empty() {
        problems.push(("last_name", "required"));
    }
    if form.first_name.trim().is_empty() {
        problems.push(("first_name", "required"));
    }
    let phone = form.phone.trim();
    if !phone.is_empty() && !plausible_phone(phone) {
        problems.push(("phone", "phone_format"));
    }
    let email = form.email.trim();
    if email.is_empty() {
        problems.push(("email", "required"));
    } else if !plausible_email(email) {
        problems.push(("email", "email_format"));
    }
    let role = form.role.parse::<Role>();
    if role.is_err() {
        problems.push(("role", "role_unknown"));
    }
    let lang = optional(&form.lang);
    if lang.as_deref().is_some_and(|l| !matches!(l, "en" | "fr")) {
        problems.push(("lang", "lang_unknown"));
    }
    let timezone = optional(&form.timezone);
    if timezone.as_deref().is_some_and(|tz| !valid_timezone(tz)) {
        problems.push(("timezone", "timezone_unknown"));
    }
    match role {
        Ok(role) if problems.is_empty() => Ok(Person {
            login: login.to_owned(),
            matricule: optional(&form.matricule),
            last_name: optional(&form.last_name),
            first_name: optional(&form.first_name),
            email: email.to_owned(),
            phone: optional(&form.phone),
            job_title: optional(&form.job_title),
            department: optional(&form.department),
            role,
            lang,
            timezone,
            domains: None,
        }),
        _ => Err(problems),
    }
}

/// A number an SMS gateway can reach: digits with the usual separators, `+` only in front, 6 to
/// 15 digits (E.164's maximum).
fn plausible_phone(phone: &str) -> bool {
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    body.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')'))
        && (6..=15).contains(&digits)
}

fn plausible_email(email: &str) -> bool {
    email.len() <= EMAIL_MAX
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn unique_problem(e: &sqlx::Error) -> Option<Problem> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let what = db.constraint().unwrap_or_default().to_owned() + db.message();
            if what.contains("matricule") {
                Some(("matricule", "matricule_taken"))
            } else {
                Some(("login", "login_taken"))
            }
        }
        _ => None,
    }
}

/// The mail a single-use link is sent in, composed by the console (it knows the language and
/// the public address).
pub type LinkMail<'a> = &'a (dyn Fn(&User, &str) -> Mail + Sync);

/// How long account links stay valid.
#[derive(Clone, Copy, Debug)]
pub struct LinkPolicy {
    pub activation_ttl: std::time::Duration,
}

/// Creates a person with no password, the administrator's menu choices, a single-use
/// activation link mailed to them (through the outbox) and the audit entry: one transaction.
pub async fn create_person(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    person: &Person,
    menu_choice: Option<&std::collections::HashSet<i64>>,
    policy: LinkPolicy,
    mail: LinkMail<'_>,
) -> Result<i64, AuthError> {
    let mut tx = store.begin().await?;
    let now = now();
    let inserted = on_tx!(&mut tx, conn => sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (login, role, email, matricule, last_name, first_name, phone, job_title,
                            department, lang, timezone, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
    )
    .bind(&person.login)
    .bind(person.role.as_str())
    .bind(&person.email)
    .bind(&person.matricule)
    .bind(&person.last_name)
    .bind(&person.first_name)
    .bind(&person.phone)
    .bind(&person.job_title)
    .bind(&person.department)
    .bind(&person.lang)
    .bind(&person.timezone)
    .bind(now)
    .fetch_one(conn)
    .await);
    let id = match inserted {
        Ok(id) => id,
        Err(e) => match unique_problem(&e) {
            Some(p) => return Err(AuthError::Form(vec![p])),
            None => return Err(StoreError::from(e).into()),
        },
    };
    if let Some(choice) = menu_choice {
        // Menus are read outside the transaction: they only change through the administrator.
        let menus = crate::menus::for_user(store, id, person.role).await?;
        crate::menus::set_user_choices(&mut tx, id, &menus, person.role, choice).await?;
    }
    if let Some(domains) = &person.domains {
        crate::contacts::set_domains(&mut tx, id, domains).await?;
    }
    let user = get_user_tx(&mut tx, id).await?.ok_or(AuthError::NotFound)?;
    let token = new_link(&mut tx, id, "activation", policy.activation_ttl).await?;
    vigie_notify::enqueue(&mut tx, &mail(&user, &token)).await?;
    let mut view = user.audit_view();
    if let Some(domains) = &person.domains {
        view["domains"] = serde_json::json!(domains);
    }
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "user.create")
            .target("user", id, &person.login)
            .change(None, Some(view)),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A new single-use link for a user; returns the token to put in the URL.
async fn new_link(
    tx: &mut StoreTx,
    user_id: i64,
    purpose: &str,
    ttl: std::time::Duration,
) -> Result<String, AuthError> {
    let token = new_token("vgl")?;
    let now = now();
    let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(3));
    // A new link replaces the ones not used yet.
    on_tx!(&mut *tx, conn => sqlx::query(
        "UPDATE user_links SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(purpose)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    on_tx!(&mut *tx, conn => sqlx::query(
        "INSERT INTO user_links (digest, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_digest(&token))
    .bind(user_id)
    .bind(purpose)
    .bind(now)
    .bind(expires)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(token)
}

/// Mails a new activation link (the first one expired or was lost).
pub async fn resend_activation(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    user_id: i64,
    policy: LinkPolicy,
    mail: LinkMail<'_>,
) -> Result<(), AuthError> {
    let mut tx = store.begin().await?;
    let user = get_user_tx(&mut tx, user_id)
        .await?
        .ok_or(AuthError::NotFound)?;
    let token = new_link(&mut tx, user_id, "activation", policy.activation_ttl).await?;
    vigie_notify::enqueue(&mut tx, &mail(&user, &token)).await?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "user.activation_sent").target("user", user_id, &user.login),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The user a live link belongs to, without using it (to show the form).
pub async fn peek_link(store: &Store, token: &str) -> Result<Option<User>, AuthError> {
    let row: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT l.user_id FROM user_links l JOIN users u ON u.id = l.user_id
         WHERE l.digest = $1 AND l.used_at IS NULL AND l.expires_at > $2 AND NOT u.disabled",
    )
    .bind(token_digest(token))
    .bind(now())
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    match row {
        Some(id) => get_user(store, id).await,
        None => Ok(None),
    }
}

/// Checks a new password; the problem's locale key.
pub fn check_new_password(password: &str, confirm: &str, login: &str) -> Option<Problem> {
    let n = password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        Some(("password", "password_length"))
    } else if password != confirm {
        Some(("confirm", "password_mismatch"))
    } else if password.eq_ignore_ascii_case(login) {
        Some(("password", "password_is_login"))
    } else {
        None
    }
}

/// Uses an activation (or reset) link: sets the password, marks the link used. Single use, even
/// when two requests race: the link is claimed by an `UPDATE … WHERE used_at IS NULL`.
pub async fn use_link(
    store: &Store,
    token: &str,
    password: &str,
    ip: Option<&str>,
) -> Result<User, AuthError> {
    let hash = hash_password(password)?;
    let mut tx = store.begin().await?;
    let now = now();
    let claimed: Option<i64> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "UPDATE user_links SET used_at = $1
         WHERE digest = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
    )
    .bind(now)
    .bind(token_digest(token))
    .fetch_optional(conn)
    .await)
    .map_err(StoreError::from)?;
    let user_id = claimed.ok_or(AuthError::LinkInvalid)?;
    let user = get_user_tx(&mut tx, user_id)
        .await?
        .ok_or(AuthError::LinkInvalid)?;
    if user.disabled {
        return Err(AuthError::LinkInvalid);
    }
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = FALSE, password_changed_at = $2,
                failed_logins = 0, lock_count = 0, locked_until = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(&hash)
    .bind(now)
    .bind(user_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    let actor = Actor {
        user_id,
        login: user.login.clone(),
        role: user.role(),
    };
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(&actor), ip, "user.activate").target("user", user_id, &user.login),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Updates a person, their menu choices, mails them that their account changed, and audits the
/// change (before → after): one transaction. Open sessions of a disabled user end.
pub async fn update_person(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
    person: &Person,
    menu_choice: Option<&std::collections::HashSet<i64>>,
    mail: &(dyn Fn(&User) -> Mail + Sync),
) -> Result<(), AuthError> {
    let mut tx = store.begin().await?;
    let before = get_user_tx(&mut tx, id).await?.ok_or(AuthError::NotFound)?;
    let updated = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET login = $1, role = $2, email = $3, matricule = $4, last_name = $5, first_name = $6,
                phone = $7, job_title = $8, department = $9, lang = $10, timezone = $11, updated_at = $12
         WHERE id = $13",
    )
    .bind(&person.login)
    .bind(person.role.as_str())
    .bind(&person.email)
    .bind(&person.matricule)
    .bind(&person.last_name)
    .bind(&person.first_name)
    .bind(&person.phone)
    .bind(&person.job_title)
    .bind(&person.department)
    .bind(&person.lang)
    .bind(&person.timezone)
    .bind(now())
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()));
    if let Err(e) = updated {
        return match unique_problem(&e) {
            Some(p) => Err(AuthError::Form(vec![p])),
            None => Err(StoreError::from(e).into()),
        };
    }
    let menus_before = crate::menus::for_user(store, id, person.role).await?;
    if let Some(choice) = menu_choice {
        crate::menus::set_user_choices(&mut tx, id, &menus_before, person.role, choice).await?;
    }
    let after = get_user_tx(&mut tx, id).await?.ok_or(AuthError::NotFound)?;
    let enabled_before: Vec<&str> = menus_before
        .iter()
        .filter(|m| m.enabled(before.role()))
        .map(|m| m.code.as_str())
        .collect();
    let mut before_view = before.audit_view();
    before_view["menus"] = serde_json::json!(enabled_before);
    let mut after_view = after.audit_view();
    if let Some(choice) = menu_choice {
        let enabled_after: Vec<&str> = menus_before
            .iter()
            .filter(|m| !m.is_group() && m.within(person.role) && choice.contains(&m.id))
            .map(|m| m.code.as_str())
            .collect();
        after_view["menus"] = serde_json::json!(enabled_after);
    }
    if let Some(domains) = &person.domains {
        let before_domains: Vec<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
            "SELECT domain FROM user_domains WHERE user_id = $1 ORDER BY domain",
        )
        .bind(id)
        .fetch_all(conn)
        .await)
        .map_err(StoreError::from)?;
        crate::contacts::set_domains(&mut tx, id, domains).await?;
        before_view["domains"] = serde_json::json!(before_domains);
        after_view["domains"] = serde_json::json!(domains);
    }
    vigie_notify::enqueue(&mut tx, &mail(&after)).await?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "user.update")
            .target("user", id, &after.login)
            .change(Some(before_view), Some(after_view)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Disables (or enables again) a user. A disabled user keeps their history; their sessions
/// end and their tokens stop working.
pub async fn set_disabled(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
    disabled: bool,
) -> Result<(), AuthError> {
    let mut tx = store.begin().await?;
    let before = get_user_tx(&mut tx, id).await?.ok_or(AuthError::NotFound)?;
    let now = now();
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET disabled = $1, disabled_at = CASE WHEN $1 THEN $2 ELSE NULL END, updated_at = $2 WHERE id = $3",
    )
    .bind(disabled)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    if disabled {
        crate::session::end_all_tx(&mut tx, id, "disabled").await?;
    }
    vigie_core::audit::record(
        &mut tx,
        Entry::new(
            Some(actor),
            ip,
            if disabled {
                "user.disable"
            } else {
                "user.enable"
            },
        )
        .target("user", id, &before.login)
        .change(
            Some(serde_json::json!({"disabled": before.disabled})),
            Some(serde_json::json!({"disabled": disabled})),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes one's own password after checking the current one; other sessions end.
pub async fn change_password(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    current: &str,
    new: &str,
    keep_session: i64,
) -> Result<(), AuthError> {
    let stored: Option<Option<String>> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE id = $1",
    )
    .bind(actor.user_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let ok = stored
        .flatten()
        .is_some_and(|hash| verify_password(current, &hash));
    if !ok {
        return Err(AuthError::Form(vec![("current", "password_wrong")]));
    }
    let hash = hash_password(new)?;
    let mut tx = store.begin().await?;
    let now = now();
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = FALSE, password_changed_at = $2, updated_at = $2
         WHERE id = $3",
    )
    .bind(&hash)
    .bind(now)
    .bind(actor.user_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = 'password_changed'
         WHERE user_id = $2 AND ended_at IS NULL AND id <> $3",
    )
    .bind(now)
    .bind(actor.user_id)
    .bind(keep_session)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "user.password_change").target(
            "user",
            actor.user_id,
            &actor.login,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The user's own preferences: language and time zone.
pub async fn set_preferences(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    lang: Option<&str>,
    timezone: Option<&str>,
) -> Result<(), AuthError> {
    let mut tx = store.begin().await?;
    let before = get_user_tx(&mut tx, actor.user_id)
        .await?
        .ok_or(AuthError::NotFound)?;
    on_tx!(&mut tx, conn => sqlx::query("UPDATE users SET lang = $1, timezone = $2, updated_at = $3 WHERE id = $4")
        .bind(lang)
        .bind(timezone)
        .bind(now())
        .bind(actor.user_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "user.preferences")
            .target("user", actor.user_id, &actor.login)
            .change(
                Some(serde_json::json!({"lang": before.lang, "timezone": before.timezone})),
                Some(serde_json::json!({"lang": lang, "timezone": timezone})),
            ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One API token as its owner sees it (never the token itself).
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn list_tokens(store: &Store, user_id: i64) -> Result<Vec<TokenInfo>, AuthError> {
    let rows = on_pool!(store, pool => sqlx::query_as::<_, TokenInfo>(
        "SELECT id, label, created_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id DESC",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(rows)
}

/// Creates a token for oneself from the console; audited.
pub async fn create_own_token(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    label: &str,
) -> Result<String, AuthError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > LABEL_MAX || label.chars().any(char::is_control)
    {
        return Err(AuthError::Form(vec![("label", "label_length")]));
    }
    let token = new_token("vgt")?;
    let mut tx = store.begin().await?;
    let id: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, digest, label, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(actor.user_id)
    .bind(token_digest(&token))
    .bind(label)
    .bind(now())
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "token.create")
            .target("token", id, label)
            .change(
                None,
                Some(serde_json::json!({"label": label, "owner": actor.login})),
            ),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes one of one's tokens; returns whether there was one to revoke.
pub async fn revoke_own_token(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    token_id: i64,
) -> Result<bool, AuthError> {
    let mut tx = store.begin().await?;
    let label: Option<Option<String>> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL RETURNING label",
    )
    .bind(now())
    .bind(token_id)
    .bind(actor.user_id)
    .fetch_optional(conn)
    .await)
    .map_err(StoreError::from)?;
    let Some(label) = label else {
        return Ok(false);
    };
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "token.revoke").target(
            "token",
            token_id,
            label.unwrap_or_default(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {

    #[test]
    fn phone_numbers_must_be_reachable() {
        for ok in [
            "+221 33 000 00 00",
            "0033 1 23 45 67 89",
            "(555) 123-4567",
            "123456",
        ] {
            assert!(super::plausible_phone(ok), "{ok}");
        }
        for bad in [
            "12",
            "+",
            "abc",
            "1+2345678",
            "+1 234 567 890 123 456",
            "06 12 34 56 78 x",
        ] {
            assert!(!super::plausible_phone(bad), "{bad}");
        }
    }

    use super::*;

    fn user(login: &str) -> NewUser {
        NewUser {
            login: login.into(),
            role: Role::Operator,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        }
    }

    #[test]
    fn logins_and_emails_are_checked() {
        assert!(validate(&user("j.doe@ops")).is_ok());
        assert!(validate(&user("")).is_err());
        assert!(validate(&user("a b")).is_err());
        assert!(validate(&user(&"x".repeat(65))).is_err());
        let mut u = user("ok");
        u.email = Some("not-an-email".into());
        assert!(matches!(
            validate(&u),
            Err(AuthError::Invalid { field: "email", .. })
        ));
        u.email = Some("ops@example.org".into());
        u.password = Some("short".into());
        assert!(matches!(
            validate(&u),
            Err(AuthError::Invalid {
                field: "password",
                ..
            })
        ));
    }
}
