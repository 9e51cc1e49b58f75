//! What a reply is: the classes, in order of precedence.

use serde::{Deserialize, Serialize};

/// What a reply is, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(Serialize, Deserialize, strum::AsRefStr, strum::Display)]
#[derive(strum::EnumString)]
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Class {
    Crisis,
    /// The reply says the client has died.
    Deceased,
    OptOut,
    WrongNumber,
    Help,
    OptIn,
    Reply,
}
