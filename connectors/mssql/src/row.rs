//! Reading one row of a result by column name, with errors that name the table, the row and the
//! column (`SysLog row MsgID=12: column `SysLogSeverity` is NULL where a number is expected`).
//!
//! Values are accepted in every shape SQL Server (or a TDS server standing in for it) may send
//! them: integers of any width, numbers kept as text (Orion's `Nodes.Status` is `char(20)`), times
//! as `datetime`/`datetime2` or as ISO text.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use vigie_poll::SourceError;

use crate::client::{Cell, Rows};

/// One row of `rows`, for mapping code.
pub struct RowView<'a> {
    rows: &'a Rows,
    index: usize,
    table: &'a str,
    id_column: &'a str,
}

const TIME_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

/// A time written as text (`2025-01-14 09:01:57`, ISO 8601 with `T`, a trailing `Z`).
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim().trim_end_matches('Z');
    TIME_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
}

impl<'a> RowView<'a> {
    pub fn new(rows: &'a Rows, index: usize, table: &'a str, id_column: &'a str) -> RowView<'a> {
        RowView {
            rows,
            index,
            table,
            id_column,
        }
    }

    /// `SysLog row MsgID=12`.
    pub fn label(&self) -> String {
        let id = self
            .rows
            .column(self.id_column)
            .and_then(|i| self.rows.rows.get(self.index).and_then(|r| r.get(i)))
            .map(|c| match c {
                Cell::Text(s) => s.clone(),
                other => other.to_json().to_string(),
            })
            .unwrap_or_else(|| "?".into());
        format!("{} row {}={id}", self.table, self.id_column)
    }

    fn cell(&self, column: &str) -> Result<&'a Cell, SourceError> {
        let i = self.rows.column(column).ok_or_else(|| {
            SourceError::Schema(format!(
                "{}: the result has no column `{column}`",
                self.table
            ))
        })?;
        Ok(self
            .rows
            .rows
            .get(self.index)
            .and_then(|r| r.get(i))
            .unwrap_or(&Cell::Null))
    }

    /// Whether the result has the column (optional columns of some versions).
    pub fn has(&self, column: &str) -> bool {
        self.rows.column(column).is_some()
    }

    fn bad(&self, column: &str, what: &str) -> SourceError {
        SourceError::Data(format!("{}: column `{column}` {what}", self.label()))
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n)),
            Cell::Bool(b) => Ok(Some(i64::from(*b))),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(*f as i64)),
            Cell::Text(s) if s.trim().is_empty() => Ok(None),
            Cell::Text(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                self.bad(
                    column,
                    &format!("holds `{}` where a number is expected", s.trim()),
                )
            }),
            _ => Err(self.bad(column, "is not a number")),
        }
    }

    pub fn int(&self, column: &str) -> Result<i64, SourceError> {
        self.opt_int(column)?
            .ok_or_else(|| self.bad(column, "is NULL where a number is expected"))
    }

    pub fn opt_float(&self, column: &str) -> Result<Option<f64>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n as f64)),
            Cell::Float(f) => Ok(Some(*f)),
            Cell::Text(s) if s.trim().is_empty() => Ok(None),
            Cell::Text(s) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| self.bad(column, "is not a number")),
            _ => Err(self.bad(column, "is not a number")),
        }
    }

    pub fn opt_bool(&self, column: &str) -> Result<Option<bool>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Bool(b) => Ok(Some(*b)),
            Cell::Int(n) => Ok(Some(*n != 0)),
            Cell::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "1" | "true" => Ok(Some(true)),
                "0" | "false" => Ok(Some(false)),
                _ => Err(self.bad(column, "is not a yes/no value")),
            },
            _ => Err(self.bad(column, "is not a yes/no value")),
        }
    }

    /// Text; numbers are shown as text. `None` for NULL.
    pub fn opt_text(&self, column: &str) -> Result<Option<String>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            Cell::Int(n) => Ok(Some(n.to_string())),
            Cell::Float(f) => Ok(Some(f.to_string())),
            Cell::Bool(b) => Ok(Some(if *b { "1" } else { "0" }.into())),
            Cell::Time(t) => Ok(Some(t.format("%Y-%m-%d %H:%M:%S").to_string())),
            Cell::Bytes(b) => String::from_utf8(b.clone()).map(Some).map_err(|_| {
                let head: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
                self.bad(
                    column,
                    &format!("is not valid UTF-8 text (bytes {} …)", head.join(" ")),
                )
            }),
        }
    }

    /// Text, `None` when NULL or blank.
    pub fn opt_nonblank(&self, column: &str) -> Result<Option<String>, SourceError> {
        Ok(self.opt_text(column)?.filter(|s| !s.trim().is_empty()))
    }

    pub fn text(&self, column: &str) -> Result<String, SourceError> {
        self.opt_text(column)?
            .ok_or_else(|| self.bad(column, "is NULL where text is expected"))
    }

    pub fn opt_time(&self, column: &str) -> Result<Option<NaiveDateTime>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Time(t) => Ok(Some(*t)),
            Cell::Text(s) if s.trim().is_empty() => Ok(None),
            Cell::Text(s) => parse_time(s).map(Some).ok_or_else(|| {
                self.bad(
                    column,
                    &format!("holds `{}` where a time is expected", s.trim()),
                )
            }),
            _ => Err(self.bad(column, "is not a time")),
        }
    }

    pub fn time(&self, column: &str) -> Result<NaiveDateTime, SourceError> {
        self.opt_time(column)?
            .ok_or_else(|| self.bad(column, "is NULL where a time is expected"))
    }

    /// The whole row as JSON, for the alert's `raw` detail.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        if let Some(row) = self.rows.rows.get(self.index) {
            for (name, cell) in self.rows.columns.iter().zip(row) {
                if name.starts_with("vigie_") {
                    continue;
                }
                map.insert(name.clone(), cell.to_json());
            }
        }
        Value::Object(map)
    }
}
