//! Who sees which clients.

use super::dialect::id_list;

/// Whose clients a coach acts on: an admin everyone's; a coach their own and
/// those of the coaches they cover for (see `coaches::scope_for`). The one
/// visibility rule: every list filters by [`Scope::sql`], every single
/// client or draft by [`Scope::includes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Coaches(Vec<i64>),
}

impl Scope {
    /// The SQL condition on a clients' `coach_id` column.
    pub fn sql(&self, coach_column: &str) -> String {
        match self {
            Scope::All => "1 = 1".to_owned(),
            Scope::Coaches(ids) => format!("{coach_column} IN {}", id_list(ids.iter().copied())),
        }
    }

    /// Whether a client of this coach is in scope.
    pub fn includes(&self, coach_id: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::Coaches(ids) => ids.contains(&coach_id),
        }
    }
}
