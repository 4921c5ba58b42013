//! One client over the two database families the sources live in: MySQL/MariaDB (`mysql_async`)
//! and PostgreSQL (`sqlx`). Connectors write a statement once with `?` markers; the client turns
//! the markers into `$N` for PostgreSQL, binds the parameters, and hands back rows of neutral
//! [`Cell`]s, so that mapping code never sees a driver type.
//!
//! Errors are classified for the health line ([`SourceError`]): unreachable, login refused or
//! unknown database, missing table or column, bad data. Messages never carry the password: the
//! URL is only ever shown through [`redact_url`].

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, PoolConstraints, PoolOpts, TxOpts};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{
    AssertSqlSafe, Column as _, Executor as _, Row as _, SqlSafeStr as _, Statement as _,
    TypeInfo as _, ValueRef as _,
};
use tokio::sync::OnceCell;
use vigie_poll::SourceError;

/// The SQL family of a source database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Postgres,
}

impl Dialect {
    /// The dialect of a source URL, or a configuration error naming the schemes accepted.
    pub fn of_url(url: &str) -> Result<Dialect, SourceError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("mysql") | Some("mariadb") => Ok(Dialect::MySql),
            Some("postgres") | Some("postgresql") => Ok(Dialect::Postgres),
            Some("mssql") | Some("sqlserver") => Err(SourceError::Config(
                "SQL Server sources are not supported by this build yet".into(),
            )),
            _ => Err(SourceError::Config(format!(
                "the URL `{}` is not a mysql:// or postgres:// URL",
                redact_url(url)
            ))),
        }
    }

    /// A time `secs` seconds before the database's own "now", comparable with `TIMESTAMP`
    /// (MySQL, in the session's time zone) and `timestamp without time zone` (PostgreSQL) columns.
    pub fn now_minus(self, secs: u32) -> String {
        match self {
            Dialect::MySql => format!("(NOW() - INTERVAL {secs} SECOND)"),
            Dialect::Postgres => format!("(LOCALTIMESTAMP - INTERVAL '{secs} seconds')"),
        }
    }

    /// The database's clock as Unix epoch milliseconds.
    pub fn epoch_ms_now(self) -> &'static str {
        match self {
            Dialect::MySql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// `expr` as text, to compare an integer column with a text one.
    pub fn as_text(self, expr: &str) -> String {
        match self {
            Dialect::MySql => format!("CAST({expr} AS CHAR)"),
            Dialect::Postgres => format!("CAST({expr} AS TEXT)"),
        }
    }
}

/// A parameter bound to a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
    Time(NaiveDateTime),
}

/// One value of a result row, whatever the driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// Bytes that are not UTF-8 text (a binary column, or text in another encoding).
    Bytes(Vec<u8>),
    Time(NaiveDateTime),
    TimeTz(DateTime<Utc>),
    Date(NaiveDate),
    Json(Value),
    /// A column of a type the hub does not read; the payload names the type.
    Unsupported(String),
}

impl Cell {
    /// The value for an alert's `raw` detail: numbers and text as they are, times in ISO 8601,
    /// bytes shown lossily.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null | Cell::Unsupported(_) => Value::Null,
            Cell::Int(n) => Value::from(*n),
            Cell::UInt(n) => Value::from(*n),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            Cell::Time(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
            Cell::TimeTz(t) => Value::String(t.to_rfc3339()),
            Cell::Date(d) => Value::String(d.to_string()),
            Cell::Json(v) => v.clone(),
        }
    }
}

/// A result: column names and rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    index: HashMap<String, usize>,
}

impl Rows {
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Cell>>) -> Rows {
        let index = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_ascii_lowercase(), i))
            .collect();
        Rows {
            columns,
            rows,
            index,
        }
    }

    /// The position of a column, found without regard to case (PostgreSQL folds unquoted names
    /// to lower case, the tools' DDL is mixed case).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.index.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Replaces `?` markers outside quoted text with `$1`, `$2`, …
pub fn numbered_markers(sql: &str) -> String {
    typed_markers(sql, &[])
}

/// Replaces `?` markers with `$N` and, for the parameters given, a cast to their type
/// (`$1::int8`): PostgreSQL would otherwise infer a parameter's type from its column (`int4` for
/// an `INTEGER` id) and refuse the 64-bit value bound to it.
fn typed_markers(sql: &str, params: &[Param]) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                    match params.get(n - 1) {
                        Some(Param::Int(_)) => out.push_str("::int8"),
                        Some(Param::Text(_)) => out.push_str("::text"),
                        Some(Param::Time(_)) => out.push_str("::timestamp"),
                        None => {}
                    }
                }
                _ => out.push(c),
            },
        }
    }
    out
}

/// How to open the connection.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Statements run on each new MySQL connection (`SET time_zone = '+00:00'`).
    pub init: Vec<String>,
    /// The most connections kept to the source.
    pub max_connections: usize,
}

enum Pool {
    MySql(mysql_async::Pool),
    Postgres(sqlx::PgPool),
}

/// A source database's connections, opened on first use.
pub struct Client {
    url: String,
    dialect: Dialect,
    options: ClientOptions,
    pool: OnceCell<Pool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &redact_url(&self.url))
            .field("dialect", &self.dialect)
            .finish()
    }
}

impl Client {
    /// Checks the URL; connects lazily.
    pub fn new(url: &str, options: ClientOptions) -> Result<Client, SourceError> {
        let dialect = Dialect::of_url(url)?;
        // Parse now, so that a bad URL is a configuration error at start, not at each poll.
        match dialect {
            Dialect::MySql => {
                mysql_opts(url)?;
            }
            Dialect::Postgres => {
                pg_opts(url)?;
            }
        }
        Ok(Client {
            url: url.to_owned(),
            dialect,
            options,
            pool: OnceCell::new(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL without its password.
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    async fn pool(&self) -> Result<&Pool, SourceError> {
        self.pool
            .get_or_try_init(|| async {
                let max = self.options.max_connections.clamp(1, 8);
                match self.dialect {
                    Dialect::MySql => {
                        let constraints = PoolConstraints::new(0, max).unwrap_or_default();
                        let opts = OptsBuilder::from_opts(mysql_opts(&self.url)?)
                            .pool_opts(
                                PoolOpts::new()
                                    .with_constraints(constraints)
                                    .with_inactive_connection_ttl(Duration::from_secs(60))
                                    .with_ttl_check_interval(Duration::from_secs(30)),
                            )
                            .init(self.options.init.clone())
                            .stmt_cache_size(64)
                            .tcp_nodelay(true)
                            .tcp_keepalive(Some(Duration::from_secs(60)));
                        Ok(Pool::MySql(mysql_async::Pool::new(opts)))
                    }
                    Dialect::Postgres => {
                        let pool = PgPoolOptions::new()
                            .min_connections(0)
                            .max_connections(max as u32)
                            .acquire_timeout(Duration::from_secs(10))
                            .idle_timeout(Duration::from_secs(60))
                            .connect_lazy_with(pg_opts(&self.url)?);
                        Ok(Pool::Postgres(pool))
                    }
                }
            })
            .await
    }

    /// Runs a statement written with `?` markers and returns every row. `read_only` runs it in
    /// a read-only transaction (for statements written by administrators).
    pub async fn query(
        &self,
        sql: &str,
        params: &[Param],
        read_only: bool,
    ) -> Result<Rows, SourceError> {
        match self.pool().await? {
            Pool::MySql(pool) => mysql_query(pool, sql, params, read_only).await,
            Pool::Postgres(pool) => pg_query(pool, sql, params, read_only).await,
        }
    }

    /// The columns a statement would return, without running it (prepared only).
    pub async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        match self.pool().await? {
            Pool::MySql(pool) => {
                let mut conn = pool.get_conn().await.map_err(mysql_error)?;
                let stmt = conn.prep(sql).await.map_err(mysql_error)?;
                Ok(stmt
                    .columns()
                    .iter()
                    .map(|c| c.name_str().into_owned())
                    .collect())
            }
            Pool::Postgres(pool) => {
                let sql = numbered_markers(sql);
                let stmt = pool
                    .prepare(AssertSqlSafe(sql).into_sql_str())
                    .await
                    .map_err(pg_error)?;
                Ok(stmt.columns().iter().map(|c| c.name().to_owned()).collect())
            }
        }
    }

    /// A trivial query: checks the network, the login and the database.
    pub async fn ping(&self) -> Result<(), SourceError> {
        self.query("SELECT 1", &[], false).await.map(drop)
    }

    /// Closes the connections.
    pub async fn close(&self) {
        if let Some(pool) = self.pool.get() {
            match pool {
                Pool::MySql(p) => {
                    let _ = p.clone().disconnect().await;
                }
                Pool::Postgres(p) => p.close().await,
            }
        }
    }
}

fn mysql_opts(url: &str) -> Result<Opts, SourceError> {
    // `mariadb://` is accepted in the configuration; the driver knows `mysql://` only.
    let url = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mariadb") => format!("mysql://{rest}"),
        _ => url.to_owned(),
    };
    Opts::from_url(&url).map_err(|e| {
        SourceError::Config(format!("the URL `{}` is not valid: {e}", redact_url(&url)))
    })
}

fn pg_opts(url: &str) -> Result<PgConnectOptions, SourceError> {
    PgConnectOptions::from_str(url)
        .map(|o| o.application_name("vigie-poll"))
        .map_err(|_| SourceError::Config(format!("the URL `{}` is not valid", redact_url(url))))
}

fn mysql_param(p: &Param) -> mysql_async::Value {
    use chrono::{Datelike, Timelike};
    match p {
        Param::Int(n) => mysql_async::Value::Int(*n),
        Param::Text(s) => mysql_async::Value::Bytes(s.as_bytes().to_vec()),
        Param::Time(t) => mysql_async::Value::Date(
            t.year().clamp(0, 9999) as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.nanosecond() / 1000,
        ),
    }
}

async fn mysql_query(
    pool: &mysql_async::Pool,
    sql: &str,
    params: &[Param],
    read_only: bool,
) -> Result<Rows, SourceError> {
    let values: Vec<mysql_async::Value> = params.iter().map(mysql_param).collect();
    let params = if values.is_empty() {
        mysql_async::Params::Empty
    } else {
        mysql_async::Params::Positional(values)
    };
    let mut conn = pool.get_conn().await.map_err(mysql_error)?;
    if read_only {
        let mut options = TxOpts::new();
        options.with_readonly(true);
        let mut tx = conn.start_transaction(options).await.map_err(mysql_error)?;
        let rows = mysql_collect(&mut tx, sql, params).await?;
        tx.rollback().await.map_err(mysql_error)?;
        Ok(rows)
    } else {
        mysql_collect(&mut conn, sql, params).await
    }
}

async fn mysql_collect<Q: Queryable + Send>(
    conn: &mut Q,
    sql: &str,
    params: mysql_async::Params,
) -> Result<Rows, SourceError> {
    let mut result = conn.exec_iter(sql, params).await.map_err(mysql_error)?;
    let columns: Vec<mysql_async::Column> = result.columns_ref().to_vec();
    let raw: Vec<mysql_async::Row> = result.collect().await.map_err(mysql_error)?;
    let names = columns.iter().map(|c| c.name_str().into_owned()).collect();
    let mut rows = Vec::with_capacity(raw.len());
    for row in raw {
        let values = row.unwrap();
        let cells = values
            .into_iter()
            .zip(columns.iter())
            .map(|(v, c)| mysql_cell(v, c))
            .collect();
        rows.push(cells);
    }
    Ok(Rows::new(names, rows))
}

/// MySQL's `binary` character set: the column holds bytes, not text.
const BINARY_CHARSET: u16 = 63;

fn mysql_cell(value: mysql_async::Value, column: &mysql_async::Column) -> Cell {
    use mysql_async::consts::ColumnType as T;
    match value {
        mysql_async::Value::NULL => Cell::Null,
        mysql_async::Value::Int(n) => Cell::Int(n),
        mysql_async::Value::UInt(n) => i64::try_from(n).map_or(Cell::UInt(n), Cell::Int),
        mysql_async::Value::Float(f) => Cell::Float(f64::from(f)),
        mysql_async::Value::Double(f) => Cell::Float(f),
        mysql_async::Value::Date(y, mo, d, h, mi, s, us) => {
            if y == 0 && mo == 0 && d == 0 {
                // MySQL's "zero date": no date.
                return Cell::Null;
            }
            let date = NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d));
            match (column.column_type(), date) {
                (T::MYSQL_TYPE_DATE, Some(date)) => Cell::Date(date),
                (_, Some(date)) => date
                    .and_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us)
                    .map_or(Cell::Unsupported("DATETIME".into()), Cell::Time),
                (_, None) => Cell::Unsupported("DATETIME".into()),
            }
        }
        mysql_async::Value::Time(neg, days, h, m, s, _) => {
            let total =
                i64::from(days) * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s);
            Cell::Int(if neg { -total } else { total })
        }
        mysql_async::Value::Bytes(bytes) => match column.column_type() {
            T::MYSQL_TYPE_JSON => match serde_json::from_slice(&bytes) {
                Ok(v) => Cell::Json(v),
                Err(_) => Cell::Bytes(bytes),
            },
            _ if column.character_set() == BINARY_CHARSET
                && !matches!(
                    column.column_type(),
                    T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL
                ) =>
            {
                // Binary columns (BLOB, VARBINARY; Bacula's names on MySQL) may still hold text.
                match String::from_utf8(bytes) {
                    Ok(s) => Cell::Text(s),
                    Err(e) => Cell::Bytes(e.into_bytes()),
                }
            }
            _ => match String::from_utf8(bytes) {
                Ok(s) => Cell::Text(s),
                Err(e) => Cell::Bytes(e.into_bytes()),
            },
        },
    }
}

/// Classifies a MySQL/MariaDB error for the health line.
pub(crate) fn mysql_error(e: mysql_async::Error) -> SourceError {
    use mysql_async::{DriverError, Error};
    match e {
        Error::Io(io) => SourceError::Unreachable(io.to_string()),
        Error::Driver(DriverError::ConnectionClosed | DriverError::PoolDisconnected) => {
            SourceError::Unreachable("the connection was closed".into())
        }
        Error::Driver(d) => SourceError::Other(d.to_string()),
        Error::Url(u) => SourceError::Config(format!("bad URL: {u}")),
        Error::Server(s) => {
            let text = format!("{} (error {})", s.message, s.code);
            match s.code {
                // access denied (user, database), unknown database, password expired
                1044 | 1045 | 1049 | 1698 | 1820 | 1862 => SourceError::Login(text),
                // unknown table, unknown column
                1146 | 1054 | 1109 => SourceError::Schema(text),
                // syntax, read-only transaction, wrong argument count
                1064 | 1792 | 1210 | 1582 | 1583 => SourceError::Config(text),
                // too many connections, server shutting down, lock wait, server gone
                1040 | 1053 | 1205 | 2006 | 2013 | 1927 => SourceError::Unreachable(text),
                // truncated or incorrect values, invalid character strings
                1292 | 1366 | 1300 => SourceError::Data(text),
                _ => SourceError::Other(text),
            }
        }
        Error::Other(o) => SourceError::Other(o.to_string()),
    }
}

fn pg_error(e: sqlx::Error) -> SourceError {
    match &e {
        sqlx::Error::Io(io) => SourceError::Unreachable(io.to_string()),
        sqlx::Error::Tls(t) => SourceError::Unreachable(format!("TLS: {t}")),
        sqlx::Error::PoolTimedOut => {
            SourceError::Unreachable("no connection could be opened in time".into())
        }
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            SourceError::Unreachable("the connection pool is closed".into())
        }
        sqlx::Error::Configuration(c) => SourceError::Config(c.to_string()),
        sqlx::Error::ColumnDecode { index, source } => {
            SourceError::Data(format!("column {index} cannot be read: {source}"))
        }
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default().into_owned();
            let text = format!("{} (SQLSTATE {code})", db.message());
            if code.starts_with("28") || code == "3D000" {
                SourceError::Login(text)
            } else if code == "42P01" || code == "42703" || code == "3F000" {
                SourceError::Schema(text)
            } else if code.starts_with("42") || code == "25006" {
                SourceError::Config(text)
            } else if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") {
                SourceError::Unreachable(text)
            } else if code.starts_with("22") {
                SourceError::Data(text)
            } else {
                SourceError::Other(text)
            }
        }
        _ => SourceError::Other(e.to_string()),
    }
}

async fn pg_query(
    pool: &sqlx::PgPool,
    sql: &str,
    params: &[Param],
    read_only: bool,
) -> Result<Rows, SourceError> {
    let sql = typed_markers(sql, params);
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for p in params {
        query = match p {
            Param::Int(n) => query.bind(*n),
            Param::Text(s) => query.bind(s.clone()),
            Param::Time(t) => query.bind(*t),
        };
    }
    let rows: Vec<PgRow> = if read_only {
        let mut tx = pool.begin().await.map_err(pg_error)?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(pg_error)?;
        let rows = query.fetch_all(&mut *tx).await.map_err(pg_error)?;
        tx.rollback().await.map_err(pg_error)?;
        rows
    } else {
        query.fetch_all(pool).await.map_err(pg_error)?
    };
    let columns: Vec<String> = match rows.first() {
        Some(row) => row.columns().iter().map(|c| c.name().to_owned()).collect(),
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cells = Vec::with_capacity(columns.len());
        for i in 0..row.columns().len() {
            cells.push(pg_cell(row, i)?);
        }
        out.push(cells);
    }
    Ok(Rows::new(columns, out))
}

fn pg_cell(row: &PgRow, i: usize) -> Result<Cell, SourceError> {
    let raw = row.try_get_raw(i).map_err(pg_error)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let type_name = raw.type_info().name().to_owned();
    let cell = match type_name.as_str() {
        "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i).map_err(pg_error)?)),
        "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i).map_err(pg_error)?)),
        "INT8" => Cell::Int(row.try_get::<i64, _>(i).map_err(pg_error)?),
        "OID" => Cell::Int(i64::from(
            row.try_get::<sqlx::postgres::types::Oid, _>(i)
                .map_err(pg_error)?
                .0,
        )),
        "FLOAT4" => Cell::Float(f64::from(row.try_get::<f32, _>(i).map_err(pg_error)?)),
        "FLOAT8" => Cell::Float(row.try_get::<f64, _>(i).map_err(pg_error)?),
        "BOOL" => Cell::Bool(row.try_get::<bool, _>(i).map_err(pg_error)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" | "UNKNOWN" => {
            Cell::Text(row.try_get::<String, _>(i).map_err(pg_error)?)
        }
        "\"CHAR\"" => {
            Cell::Text(char::from(row.try_get::<i8, _>(i).map_err(pg_error)? as u8).to_string())
        }
        "BYTEA" => {
            let bytes = row.try_get::<Vec<u8>, _>(i).map_err(pg_error)?;
            match String::from_utf8(bytes) {
                Ok(s) => Cell::Text(s),
                Err(e) => Cell::Bytes(e.into_bytes()),
            }
        }
        "TIMESTAMP" => Cell::Time(row.try_get::<NaiveDateTime, _>(i).map_err(pg_error)?),
        "TIMESTAMPTZ" => Cell::TimeTz(row.try_get::<DateTime<Utc>, _>(i).map_err(pg_error)?),
        "DATE" => Cell::Date(row.try_get::<NaiveDate, _>(i).map_err(pg_error)?),
        "JSON" | "JSONB" => Cell::Json(row.try_get::<Value, _>(i).map_err(pg_error)?),
        other => Cell::Unsupported(other.to_owned()),
    };
    Ok(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_markers("SELECT a FROM t WHERE a > ? AND b = '?' AND c < ? LIMIT ?"),
            "SELECT a FROM t WHERE a > $1 AND b = '?' AND c < $2 LIMIT $3"
        );
        assert_eq!(
            typed_markers(
                "a > ? AND b = ? AND c < ?",
                &[
                    Param::Int(1),
                    Param::Text("x".into()),
                    Param::Time(NaiveDateTime::default())
                ]
            ),
            "a > $1::int8 AND b = $2::text AND c < $3::timestamp"
        );
    }

    #[test]
    fn urls_are_redacted_and_recognised() {
        assert_eq!(
            redact_url("mysql://glpi:s3cret@db:3306/glpi"),
            "mysql://glpi:***@db:3306/glpi"
        );
        assert_eq!(Dialect::of_url("mysql://h/db").ok(), Some(Dialect::MySql));
        assert_eq!(Dialect::of_url("MariaDB://h/db").ok(), Some(Dialect::MySql));
        assert_eq!(
            Dialect::of_url("postgresql://h/db").ok(),
            Some(Dialect::Postgres)
        );
        let err = Dialect::of_url("ftp://u:pw@h/x")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("u:***@h") && !e.contains("pw"))
        );
        assert!(matches!(
            Dialect::of_url("mssql://h/x"),
            Err(SourceError::Config(_))
        ));
    }

    #[test]
    fn bad_urls_are_configuration_errors_without_the_password() {
        let e = Client::new(
            "mysql://u:topsecret@h:notaport/db",
            ClientOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("misconfigured"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
    }

    #[test]
    fn columns_are_found_without_regard_to_case() {
        let rows = Rows::new(vec!["JobId".into(), "name".into()], vec![]);
        assert_eq!(rows.column("jobid"), Some(0));
        assert_eq!(rows.column("NAME"), Some(1));
        assert_eq!(rows.column("x"), None);
    }
}
