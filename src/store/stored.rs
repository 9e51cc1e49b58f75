//! Text columns read as domain enums. A value the database holds that this
//! version does not know (a row written by a newer reengage, or by hand) is an
//! error that names the table, the column and the value, never a guess.

use std::str::FromStr;

use crate::domain::eligibility::Refusal;
use crate::domain::{AuditAction, Channel, EventKind, MessageStatus, Role};

/// A stored value no enum variant has.
#[derive(Debug, thiserror::Error)]
#[error("the {table} table holds {column} `{value}`, which this version of reengage does not know")]
pub struct Unknown {
    pub table: &'static str,
    pub column: &'static str,
    pub value: String,
}

/// Reads `value`, found in `table`.`column`.
pub fn read<T: FromStr>(
    table: &'static str,
    column: &'static str,
    value: &str,
) -> Result<T, Unknown> {
    value.parse().map_err(|_| Unknown {
        table,
        column,
        value: value.to_owned(),
    })
}

/// Reads an optional column.
pub fn read_opt<T: FromStr>(
    table: &'static str,
    column: &'static str,
    value: Option<&str>,
) -> Result<Option<T>, Unknown> {
    value.map(|v| read(table, column, v)).transpose()
}

/// A type reads from its text for rows read with `#[sqlx(try_from = "String")]`,
/// naming where it is kept.
macro_rules! reads_from_text {
    ($($t:ty => $table:literal . $column:literal),* $(,)?) => {$(
        impl TryFrom<String> for $t {
            type Error = Unknown;

            fn try_from(text: String) -> Result<Self, Unknown> {
                read($table, $column, &text)
            }
        }
    )*};
}

reads_from_text!(
    Channel => "messages or inbound" . "channel",
    MessageStatus => "messages" . "status",
    Refusal => "messages" . "cancel_reason",
    Role => "coaches" . "role",
    EventKind => "engagement_events" . "kind",
    AuditAction => "audit_log" . "action",
);
