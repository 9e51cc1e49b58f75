//! SQL text built in Rust: the pieces spelt differently for SQLite and
//! PostgreSQL, and integer lists, spelt the same in both.

use anyhow::Context as _;
use sqlx::AnyConnection;

/// `(1, 2, 3)` for an SQL `IN`. Only integers go in, so the text is safe.
pub(crate) fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    format!("({})", ids.join(", "))
}

/// Whether the connection is to SQLite, for the two places the statements
/// differ by database: [`Placeholders`] and [`packed`].
pub(super) fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME
}

/// Parameter placeholders for the multi-row statements, in the style the
/// connection's database binds fastest. SQLite looks each `$N` up by name as
/// it binds it, walking a list, so a statement with thousands of them costs
/// time quadratic in their number (it was 84% of a 100,000-row import); its
/// plain `?` are bound by position. PostgreSQL wants `$N`. A statement built
/// with these uses them for all of its parameters, in order and once each, and
/// writes values shared by every row (integer times) into its text. (sqlx's
/// `QueryBuilder` writes `?` for the `Any` driver, which PostgreSQL refuses.)
pub(crate) struct Placeholders {
    positional: bool,
    used: usize,
}

impl Placeholders {
    pub(crate) fn for_conn(conn: &AnyConnection) -> Self {
        Self {
            positional: is_sqlite(conn),
            used: 0,
        }
    }

    /// The next `count` placeholders, comma-separated, as for an `IN` list.
    pub(crate) fn list(&mut self, count: usize) -> String {
        let first = self.used + 1;
        self.used += count;
        let params: Vec<String> = (first..=self.used)
            .map(|n| {
                if self.positional {
                    "?".to_owned()
                } else {
                    format!("${n}")
                }
            })
            .collect();
        params.join(", ")
    }

    /// `(…, shared), (…, shared), …`: `rows` rows of `width` placeholders, each
    /// ending in the same `shared` text (literals), for a multi-row `VALUES`.
    pub(crate) fn rows(&mut self, rows: usize, width: usize, shared: &str) -> String {
        let rows: Vec<String> = (0..rows)
            .map(|_| {
                let own = self.list(width);
                match shared {
                    "" => format!("({own})"),
                    shared => format!("({own}, {shared})"),
                }
            })
            .collect();
        rows.join(", ")
    }
}

/// A query that reads every row of `inner` as one: a JSON array of objects
/// keyed by `columns`, for [`unpack`]. sqlx's SQLite driver hands each row to
/// the async side on its own, copying every value and converting every
/// column's description on the way: a detection page paid 12 µs a row of 24
/// columns, ten times what SQLite took to find the row. One row of JSON costs
/// a few µs a row to write and to read.
/// `columns` is the list of the inner query's columns, separated by commas.
pub(crate) fn packed(conn: &AnyConnection, inner: &str, columns: &str) -> String {
    packed_sql(is_sqlite(conn), inner, columns)
}

fn packed_sql(sqlite: bool, inner: &str, columns: &str) -> String {
    let (array, object) = if sqlite {
        ("json_group_array", "json_object")
    } else {
        ("json_agg", "json_build_object")
    };
    let pairs: Vec<String> = columns
        .split(',')
        .map(|c| format!("'{0}', {0}", c.trim()))
        .collect();
    format!(
        "SELECT COALESCE(CAST({array}({object}({})) AS TEXT), '[]') FROM ({inner}) AS packed",
        pairs.join(", ")
    )
}

/// The rows a [`packed`] query read.
pub(crate) fn unpack<T: serde::de::DeserializeOwned>(json: &str) -> anyhow::Result<Vec<T>> {
    serde_json::from_str(json).context("Failed to read rows packed as JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pool::Store;

    #[test]
    fn placeholders_number_in_order_or_go_by_position() {
        let mut postgres = Placeholders {
            positional: false,
            used: 0,
        };
        assert_eq!(postgres.list(2), "$1, $2");
        assert_eq!(postgres.rows(2, 2, "7"), "($3, $4, 7), ($5, $6, 7)");
        let mut sqlite = Placeholders {
            positional: true,
            used: 0,
        };
        assert_eq!(sqlite.rows(2, 1, ""), "(?), (?)");
        assert_eq!(sqlite.list(1), "?");
    }

    #[test]
    fn packed_reads_rows_as_one_json_array_in_each_dialect() {
        let inner = "SELECT id, name FROM t";
        assert_eq!(
            packed_sql(true, inner, "id, name"),
            "SELECT COALESCE(CAST(json_group_array(json_object('id', id, 'name', name)) AS TEXT), '[]') \
             FROM (SELECT id, name FROM t) AS packed"
        );
        assert_eq!(
            packed_sql(false, inner, "id"),
            "SELECT COALESCE(CAST(json_agg(json_build_object('id', id)) AS TEXT), '[]') \
             FROM (SELECT id, name FROM t) AS packed"
        );
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Row {
        id: i64,
        name: Option<String>,
    }

    #[tokio::test]
    async fn packed_rows_bound_by_position_come_back_whole_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let mut conn = store.conn().await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER, name TEXT)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let sql = format!(
            "INSERT INTO t (id, name) VALUES {}",
            Placeholders::for_conn(&conn).rows(3, 2, "")
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, name) in [(1, Some("a")), (2, None), (3, Some("c, \"quoted\""))] {
            insert = insert.bind(id).bind(name);
        }
        insert.execute(&mut *conn).await.unwrap();
        let sql = packed(&conn, "SELECT id, name FROM t ORDER BY id", "id, name");
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let rows: Vec<Row> = unpack(&json).unwrap();
        assert_eq!(
            rows,
            [
                Row {
                    id: 1,
                    name: Some("a".into())
                },
                Row { id: 2, name: None },
                Row {
                    id: 3,
                    name: Some("c, \"quoted\"".into())
                },
            ]
        );
        let empty = packed(&conn, "SELECT id, name FROM t WHERE id > 9", "id, name");
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(empty))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(unpack::<Row>(&json).unwrap().is_empty());
    }
}
