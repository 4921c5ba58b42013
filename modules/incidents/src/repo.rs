//! Lists of incidents: the role's view (all, mine, my domains), filters (state, domain,
//! criticality, text, opening dates) and keyset paging, newest first.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use vigie_core::on_pool;
use vigie_core::store::{Store, StoreError, like_escape};

use crate::model::{INCIDENT_COLUMNS, Incident};

/// Which incidents a list shows before the filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every incident.
    #[default]
    All,
    /// Those transferred to this user or that they follow.
    For(i64),
    /// Those this user opened.
    OpenedBy(i64),
    /// Those of these domains (a manager's).
    Domains(Vec<String>),
}

/// A list request.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub scope: Scope,
    /// Empty: every state but `deleted`.
    pub states: Vec<String>,
    pub domain: Option<String>,
    pub criticality: Option<String>,
    /// In the reference, title, description, comments or category.
    pub text: Option<String>,
    /// Opened at or after.
    pub from: Option<DateTime<Utc>>,
    /// Opened before.
    pub to: Option<DateTime<Utc>>,
    /// Keyset: incidents with a smaller id than this.
    pub before_id: Option<i64>,
    pub limit: i64,
}

enum Arg {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// The incidents matching `filter`, newest first.
pub async fn list(store: &Store, filter: &Filter) -> Result<Vec<Incident>, StoreError> {
    let mut args: Vec<Arg> = Vec::new();
    let mut cond: Vec<String> = Vec::new();
    let push = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    match &filter.scope {
        Scope::All => {}
        Scope::For(user) => {
            let p = push(&mut args, Arg::Int(*user));
            cond.push(format!(
                "id IN (SELECT incident_id FROM incident_people WHERE user_id = {p})"
            ));
        }
        Scope::OpenedBy(user) => {
            let p = push(&mut args, Arg::Int(*user));
            cond.push(format!("opener_id = {p}"));
        }
        Scope::Domains(list) if list.is_empty() => cond.push("1 = 0".into()),
        Scope::Domains(list) => {
            let marks: Vec<String> = list
                .iter()
                .map(|d| push(&mut args, Arg::Text(d.clone())))
                .collect();
            cond.push(format!("domain IN ({})", marks.join(", ")));
        }
    }
    if filter.states.is_empty() {
        cond.push("state <> 'deleted'".into());
    } else {
        let marks: Vec<String> = filter
            .states
            .iter()
            .map(|s| push(&mut args, Arg::Text(s.clone())))
            .collect();
        cond.push(format!("state IN ({})", marks.join(", ")));
    }
    if let Some(d) = &filter.domain {
        let p = push(&mut args, Arg::Text(d.clone()));
        cond.push(format!("domain = {p}"));
    }
    if let Some(c) = &filter.criticality {
        let p = push(&mut args, Arg::Text(c.clone()));
        cond.push(format!("criticality = {p}"));
    }
    if let Some(t) = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let p = push(
            &mut args,
            Arg::Text(format!("%{}%", like_escape(&t.to_lowercase()))),
        );
        cond.push(format!(
            "(LOWER(reference) LIKE {p} ESCAPE '\\' OR LOWER(title) LIKE {p} ESCAPE '\\'
              OR LOWER(description) LIKE {p} ESCAPE '\\' OR LOWER(comments) LIKE {p} ESCAPE '\\'
              OR LOWER(category) LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(f) = filter.from {
        let p = push(&mut args, Arg::Time(f));
        cond.push(format!("opened_at >= {p}"));
    }
    if let Some(t) = filter.to {
        let p = push(&mut args, Arg::Time(t));
        cond.push(format!("opened_at < {p}"));
    }
    if let Some(b) = filter.before_id {
        let p = push(&mut args, Arg::Int(b));
        cond.push(format!("id < {p}"));
    }
    let limit = push(&mut args, Arg::Int(filter.limit.clamp(1, 1000)));
    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {} ORDER BY id DESC LIMIT {limit}",
        cond.join(" AND ")
    );
    let rows = on_pool!(store, pool => {
        let mut q = sqlx::query_as::<_, Incident>(AssertSqlSafe(sql.clone()));
        for a in &args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::Time(t) => q.bind(*t),
            };
        }
        q.fetch_all(pool).await
    })?;
    Ok(rows.into_iter().map(Incident::computed).collect())
}

/// The enabled on-call people (login, name), for the transfer and follow forms.
pub async fn oncall_people(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, (String, String)>(
        "SELECT login, COALESCE(NULLIF(TRIM(COALESCE(first_name, '') || ' ' || COALESCE(last_name, '')), ''),
                display_name, login)
         FROM users WHERE role = 'oncall' AND NOT disabled ORDER BY login",
    )
    .fetch_all(pool)
    .await)?,
    )
}

/// Times to acknowledge and to resolve over a set of incidents, for reports.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Durations {
    pub incidents: usize,
    pub acknowledged: usize,
    pub resolved: usize,
    /// Mean seconds from opening to the first qualification, transfer or resolution line.
    pub mean_time_to_acknowledge_secs: Option<i64>,
    /// Mean seconds from opening to the (last) final resolution.
    pub mean_time_to_resolve_secs: Option<i64>,
}

/// The durations of `incidents` (as [`list`] returns them).
pub fn durations(incidents: &[Incident]) -> Durations {
    let mean = |v: Vec<i64>| (!v.is_empty()).then(|| v.iter().sum::<i64>() / v.len() as i64);
    let tta: Vec<i64> = incidents
        .iter()
        .filter_map(|i| i.time_to_acknowledge_secs)
        .collect();
    let ttr: Vec<i64> = incidents
        .iter()
        .filter_map(|i| i.time_to_resolve_secs)
        .collect();
    Durations {
        incidents: incidents.len(),
        acknowledged: tta.len(),
        resolved: ttr.len(),
        mean_time_to_acknowledge_secs: mean(tta),
        mean_time_to_resolve_secs: mean(ttr),
    }
}
