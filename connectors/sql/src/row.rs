//! Reading a result row with errors that name the table, the row and the column, so that the
//! health line tells the administrator exactly what to look at.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use vigie_poll::{Key, SourceError};

use crate::client::{Cell, Rows};

/// One row of a result, with what is needed to name it in errors.
pub struct RowView<'a> {
    rows: &'a Rows,
    cells: &'a [Cell],
    /// `glpi_tickets` or `the query`.
    table: &'a str,
    /// The column identifying the row in messages.
    id_column: &'a str,
}

impl<'a> RowView<'a> {
    pub fn new(rows: &'a Rows, index: usize, table: &'a str, id_column: &'a str) -> RowView<'a> {
        RowView {
            rows,
            cells: rows.rows.get(index).map_or(&[], Vec::as_slice),
            table,
            id_column,
        }
    }

    /// `glpi_tickets row id=4521`.
    pub fn label(&self) -> String {
        let id = self
            .rows
            .column(self.id_column)
            .and_then(|i| self.cells.get(i))
            .map(|c| match c {
                Cell::Null => "NULL".to_owned(),
                other => other.to_json().to_string().trim_matches('"').to_owned(),
            })
            .unwrap_or_else(|| "?".into());
        format!("{} row {}={id}", self.table, self.id_column)
    }

    fn cell(&self, column: &str) -> Result<&'a Cell, SourceError> {
        let i = self.rows.column(column).ok_or_else(|| {
            SourceError::Schema(format!(
                "{}: no column `{column}` in the result (columns: {})",
                self.table,
                self.rows.columns.join(", ")
            ))
        })?;
        self.cells
            .get(i)
            .ok_or_else(|| SourceError::Data(format!("{}: short row", self.label())))
    }

    fn bad(&self, column: &str, problem: &str) -> SourceError {
        SourceError::Data(format!("{}: column `{column}` {problem}", self.label()))
    }

    pub fn is_null(&self, column: &str) -> Result<bool, SourceError> {
        Ok(matches!(self.cell(column)?, Cell::Null))
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n)),
            Cell::UInt(n) => i64::try_from(*n)
                .map(Some)
                .map_err(|_| self.bad(column, "is too large for a 64-bit integer")),
            Cell::Bool(b) => Ok(Some(i64::from(*b))),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(*f as i64)),
            Cell::Text(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                self.bad(column, &format!("holds `{}`, not a whole number", short(s)))
            }),
            Cell::Unsupported(t) => Err(self.bad(
                column,
                &format!("has the type {t}, which the hub cannot read (cast it in the query)"),
            )),
            _ => Err(self.bad(column, "is not a whole number")),
        }
    }

    pub fn int(&self, column: &str) -> Result<i64, SourceError> {
        self.opt_int(column)?
            .ok_or_else(|| self.bad(column, "is NULL where a number is expected"))
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            Cell::Bytes(b) => Err(self.bad(
                column,
                &format!(
                    "is not valid UTF-8 text (bytes {}); check the column's character set",
                    hex_prefix(b)
                ),
            )),
            Cell::Unsupported(t) => Err(self.bad(
                column,
                &format!("has the type {t}, which the hub cannot read (cast it in the query)"),
            )),
            Cell::Json(v) => Ok(Some(v.to_string())),
            other => Ok(Some(
                other.to_json().to_string().trim_matches('"').to_owned(),
            )),
        }
    }

    pub fn text(&self, column: &str) -> Result<String, SourceError> {
        self.opt_text(column)?
            .ok_or_else(|| self.bad(column, "is NULL where a text is expected"))
    }

    /// A time without zone as the database holds it.
    pub fn opt_time(&self, column: &str) -> Result<Option<NaiveDateTime>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Time(t) => Ok(Some(*t)),
            Cell::TimeTz(t) => Ok(Some(t.naive_utc())),
            Cell::Date(d) => Ok(d.and_hms_opt(0, 0, 0)),
            Cell::Text(s) => parse_time(s).map(Some).ok_or_else(|| {
                self.bad(
                    column,
                    &format!("holds `{}`, not a date and time", short(s)),
                )
            }),
            _ => Err(self.bad(column, "is not a date and time")),
        }
    }

    pub fn opt_bool(&self, column: &str) -> Result<Option<bool>, SourceError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Bool(b) => Ok(Some(*b)),
            Cell::Int(n) => Ok(Some(*n != 0)),
            Cell::UInt(n) => Ok(Some(*n != 0)),
            Cell::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "t" | "true" | "y" | "yes" | "on" => Ok(Some(true)),
                "0" | "f" | "false" | "n" | "no" | "off" | "" => Ok(Some(false)),
                other => Err(self.bad(
                    column,
                    &format!("holds `{}`, not a yes/no value", short(other)),
                )),
            },
            _ => Err(self.bad(column, "is not a yes/no value")),
        }
    }

    /// A watermark key: a time column gives a time, a number column a number.
    pub fn key(&self, column: &str) -> Result<Key, SourceError> {
        match self.cell(column)? {
            Cell::Null => Err(self.bad(column, "is NULL: it cannot be the watermark")),
            Cell::Time(_) | Cell::TimeTz(_) | Cell::Date(_) => self
                .opt_time(column)?
                .map(Key::Time)
                .ok_or_else(|| self.bad(column, "is not a time")),
            _ => self.int(column).map(Key::Number),
        }
    }

    /// Every column of the row as a JSON object (the alert's `raw` detail).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, cell) in self.rows.columns.iter().zip(self.cells) {
            map.insert(name.clone(), cell.to_json());
        }
        Value::Object(map)
    }
}

/// Parses the usual textual forms of a time.
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc).naive_utc());
    }
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
}

fn short(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 12 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Rows {
        Rows::new(
            vec![
                "id".into(),
                "name".into(),
                "n".into(),
                "t".into(),
                "b".into(),
            ],
            vec![vec![
                Cell::Int(7),
                Cell::Bytes(vec![0x50, 0xe9, 0x74]),
                Cell::Null,
                Cell::Text("2025-01-14 09:40:05".into()),
                Cell::Text("yes".into()),
            ]],
        )
    }

    #[test]
    fn errors_name_the_row_and_the_column() {
        let rows = rows();
        let row = RowView::new(&rows, 0, "events", "id");
        let e = row
            .text("name")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("events row id=7"), "{e}");
        assert!(
            e.contains("`name`") && e.contains("UTF-8") && e.contains("50 e9 74"),
            "{e}"
        );
        let e = row
            .int("n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("is NULL"), "{e}");
        let e = row.int("nope").err();
        assert!(matches!(e, Some(SourceError::Schema(_))));
        assert_eq!(row.opt_int("n").ok(), Some(None));
        assert_eq!(row.opt_bool("b").ok(), Some(Some(true)));
        assert!(row.opt_time("t").ok().flatten().is_some());
        assert!(matches!(row.key("id"), Ok(Key::Number(7))));
    }
}
