//! The SQL Server client: a small pool of `tiberius` connections, statements with `@P1…`
//! parameters, rows handed back as neutral [`Cell`]s, and the driver's errors classified for the
//! health line (login refused 18456, unknown database 4060, missing table 208 or column 207,
//! unreachable, timeout). The password never appears in a message: the URL is only shown redacted.

use chrono::{NaiveDateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use tiberius::{ColumnData, FromSql, Query};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};
use vigie_poll::SourceError;

use crate::url::{MssqlUrl, redact};

type Conn = tiberius::Client<Compat<TcpStream>>;

/// A parameter bound to a statement (`@P1`, `@P2`, … in the order given).
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// One value of a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Time(NaiveDateTime),
}

impl Cell {
    /// The value for an alert's `raw` detail.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(n) => Value::from(*n),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Bytes(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
            Cell::Time(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
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

    /// The position of a column, without regard to case (SQL Server's default collations are
    /// case-insensitive, so the tools' names vary in case).
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

/// A SQL Server database, reached through a pool of at most `pool` connections.
pub struct Client {
    url: MssqlUrl,
    shown: String,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.shown).finish()
    }
}

impl Client {
    /// Checks the URL; connects on the first query.
    pub fn new(url: &str) -> Result<Client, SourceError> {
        let parsed = MssqlUrl::parse(url)?;
        Ok(Client {
            permits: Semaphore::new(parsed.pool),
            url: parsed,
            shown: redact(url.split('?').next().unwrap_or(url)),
            idle: Mutex::new(Vec::new()),
        })
    }

    pub fn url(&self) -> &MssqlUrl {
        &self.url
    }

    async fn connect(&self) -> Result<Conn, SourceError> {
        let mut config = self.url.config();
        let mut redirected = false;
        loop {
            let addr = config.get_addr();
            let tcp = tokio::time::timeout(self.url.connect_timeout, TcpStream::connect(&addr))
                .await
                .map_err(|_| {
                    SourceError::Unreachable(format!(
                        "{}: no TCP connection within {}s",
                        self.shown,
                        self.url.connect_timeout.as_secs_f64()
                    ))
                })?
                .map_err(|e| SourceError::Unreachable(format!("{}: {e}", self.shown)))?;
            let _ = tcp.set_nodelay(true);
            match tiberius::Client::connect(config.clone(), tcp.compat_write()).await {
                Ok(conn) => return Ok(conn),
                // Azure SQL and availability groups may send the client elsewhere, once.
                Err(tiberius::error::Error::Routing { host, port }) if !redirected => {
                    redirected = true;
                    config.host(&host);
                    config.port(port);
                }
                Err(e) => return Err(self.classify(e, None)),
            }
        }
    }

    /// Runs one statement and returns its first result. `table` names what is read, for the
    /// messages. A pooled connection found dead is replaced once.
    pub async fn query(
        &self,
        table: &str,
        sql: &str,
        params: &[Param],
    ) -> Result<Rows, SourceError> {
        let limit = self.url.query_timeout + self.url.connect_timeout;
        match tokio::time::timeout(limit, self.query_inner(table, sql, params)).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Timeout(limit)),
        }
    }

    async fn query_inner(
        &self,
        table: &str,
        sql: &str,
        params: &[Param],
    ) -> Result<Rows, SourceError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SourceError::Other("the connection pool is closed".into()))?;
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        let result = run(&mut conn, sql, params).await;
        let result = match result {
            Err(e) if reused && is_io(&e) => {
                // The server went away since this connection was last used: one fresh try.
                tracing::debug!(server = %self.shown, error = %e, "A pooled SQL Server connection was dead; reconnecting.");
                drop(conn);
                conn = self.connect().await?;
                run(&mut conn, sql, params).await
            }
            other => other,
        };
        match result {
            Ok(rows) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(conn);
                }
                Ok(rows)
            }
            // A connection that failed mid-answer is out of step with the server: dropped.
            Err(e) => Err(self.classify(e, Some(table))),
        }
    }

    /// Checks the connection and the login with a trivial query.
    pub async fn ping(&self) -> Result<(), SourceError> {
        self.query("the server", "SELECT 1 AS one", &[])
            .await
            .map(|_| ())
    }

    /// Drops the idle connections (after the source's settings changed, in tests).
    pub fn reset(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn classify(&self, error: tiberius::error::Error, table: Option<&str>) -> SourceError {
        use tiberius::error::Error as E;
        let at = match table {
            Some(t) => format!("{} ({t})", self.shown),
            None => self.shown.clone(),
        };
        match error {
            E::Server(token) => {
                let message = token.message().to_owned();
                match token.code() {
                    18456 | 18452 | 18470 | 18486 | 18487 | 18488 => SourceError::Login(format!(
                        "{}: login failed for user `{}` (error {}): check the user and its password",
                        self.shown,
                        self.url.user,
                        token.code()
                    )),
                    4060 | 911 | 916 => SourceError::Login(format!(
                        "{}: cannot open the database `{}` (error {}): {message}",
                        self.shown,
                        self.url.database,
                        token.code()
                    )),
                    // 207 invalid column, 208 invalid object; the message says which (a TDS
                    // server standing in for SQL Server may use 208 for both).
                    code @ (207 | 208) => {
                        let what = if code == 207 || message.to_ascii_lowercase().contains("column")
                        {
                            "a column is missing"
                        } else {
                            "a table is missing"
                        };
                        SourceError::Schema(format!("{at}: {what} (error {code}): {message}"))
                    }
                    229 | 230 | 262 | 297 | 300 => SourceError::Login(format!(
                        "{at}: permission denied (error {}): {message}; grant SELECT on the tables listed in docs/mssql.md",
                        token.code()
                    )),
                    code => SourceError::Other(format!("{at}: error {code}: {message}")),
                }
            }
            E::Io {
                kind: std::io::ErrorKind::TimedOut,
                message,
            } => SourceError::Unreachable(format!("{at}: the server stopped answering: {message}")),
            E::Io { message, .. } => SourceError::Unreachable(format!("{at}: {message}")),
            E::Tls(message) => SourceError::Unreachable(format!(
                "{at}: TLS failed: {message} (see `encrypt`, `ca` and `trust_server_certificate` in docs/mssql.md)"
            )),
            E::Routing { host, port } => SourceError::Unreachable(format!(
                "{at}: the server redirected the connection twice (last to {host}:{port})"
            )),
            E::Utf8 | E::Utf16 | E::Encoding(_) | E::Conversion(_) => {
                SourceError::Data(format!("{at}: {error}"))
            }
            other => SourceError::Other(format!("{at}: {other}")),
        }
    }
}

fn is_io(e: &tiberius::error::Error) -> bool {
    matches!(
        e,
        tiberius::error::Error::Io { .. } | tiberius::error::Error::Protocol(_)
    )
}

async fn run(conn: &mut Conn, sql: &str, params: &[Param]) -> tiberius::Result<Rows> {
    let mut query = Query::new(sql);
    for p in params {
        match p {
            Param::Int(n) => query.bind(*n),
            Param::Text(s) => query.bind(s.clone()),
        }
    }
    let mut stream = query.query(conn).await?;
    let columns: Vec<String> = stream
        .columns()
        .await?
        .map(|cols| cols.iter().map(|c| c.name().to_owned()).collect())
        .unwrap_or_default();
    let rows = stream.into_first_result().await?;
    let rows = rows
        .iter()
        .map(|row| row.cells().map(|(_, data)| cell(data)).collect())
        .collect();
    Ok(Rows::new(columns, rows))
}

fn cell(data: &ColumnData<'static>) -> Cell {
    match data {
        ColumnData::U8(v) => v.map_or(Cell::Null, |n| Cell::Int(i64::from(n))),
        ColumnData::I16(v) => v.map_or(Cell::Null, |n| Cell::Int(i64::from(n))),
        ColumnData::I32(v) => v.map_or(Cell::Null, |n| Cell::Int(i64::from(n))),
        ColumnData::I64(v) => v.map_or(Cell::Null, Cell::Int),
        ColumnData::F32(v) => v.map_or(Cell::Null, |f| Cell::Float(f64::from(f))),
        ColumnData::F64(v) => v.map_or(Cell::Null, Cell::Float),
        ColumnData::Bit(v) => v.map_or(Cell::Null, Cell::Bool),
        ColumnData::String(v) => v.as_ref().map_or(Cell::Null, |s| Cell::Text(s.to_string())),
        ColumnData::Guid(v) => v.map_or(Cell::Null, |g| Cell::Text(g.to_string())),
        ColumnData::Binary(v) => v.as_ref().map_or(Cell::Null, |b| Cell::Bytes(b.to_vec())),
        ColumnData::Numeric(v) => v.map_or(Cell::Null, |n| {
            let value = n.value() as f64 / 10f64.powi(i32::from(n.scale()));
            if n.scale() == 0 && i64::try_from(n.value()).is_ok() {
                Cell::Int(n.value() as i64)
            } else {
                Cell::Float(value)
            }
        }),
        ColumnData::Xml(v) => v
            .as_ref()
            .map_or(Cell::Null, |x| Cell::Text(x.as_ref().to_string())),
        ColumnData::DateTimeOffset(_) => match chrono::DateTime::<Utc>::from_sql(data) {
            Ok(Some(t)) => Cell::Time(t.naive_utc()),
            _ => Cell::Null,
        },
        ColumnData::DateTime(_)
        | ColumnData::SmallDateTime(_)
        | ColumnData::DateTime2(_)
        | ColumnData::Date(_)
        | ColumnData::Time(_) => match NaiveDateTime::from_sql(data) {
            Ok(Some(t)) => Cell::Time(t),
            Ok(None) => Cell::Null,
            Err(_) => match chrono::NaiveDate::from_sql(data) {
                Ok(Some(d)) => Cell::Time(d.and_time(chrono::NaiveTime::MIN)),
                _ => Cell::Null,
            },
        },
    }
}
