//! All SQL lives here. One implementation over sqlx's `Any` driver serves both
//! SQLite and PostgreSQL: the statements are portable (`$N` parameters, `ON
//! CONFLICT`, `RETURNING`, partial indexes, Unix-second timestamps and 0/1 flags
//! in both). The dialect splits are the migration folders, the connection
//! settings in [`Store::connect`], and two helpers for the statements that work
//! hundreds of rows at a time, both for speed: [`Placeholders`] and [`packed`].
//!
//! Functions take `&mut AnyConnection` so that the same code runs inside a
//! transaction (`&mut *tx`) or on a pooled connection.

pub mod audit;
pub mod clients;
pub mod coaches;
pub mod conversation;
pub mod digest;
pub mod episodes;
pub mod events;
pub mod inbound;
pub mod messages;
pub mod reports;
pub mod retention;
pub mod send_log;
pub mod sessions;
pub mod tokens;

use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use sqlx::Transaction;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Unix seconds, the one timestamp representation in the database.
pub fn ts(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

pub fn from_ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

pub fn from_opt_ts(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.map(from_ts)
}

/// `(1, 2, 3)` for an SQL `IN`. Only integers go in, so the text is safe.
pub(crate) fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    format!("({})", ids.join(", "))
}

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

/// Whether the connection is to SQLite, for the two places the statements
/// differ by database: [`Placeholders`] and [`packed`].
fn is_sqlite(conn: &AnyConnection) -> bool {
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

impl Store {
    /// Opens a pool for `url` (`sqlite:…` or `postgres://…`). A SQLite file and its
    /// folder are created when missing, and every SQLite connection runs in WAL mode.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url(url)?)
        } else {
            (Backend::Postgres, url.to_owned())
        };
        let options: AnyConnectOptions = url.parse().context("Failed to read the database URL")?;
        let pool = AnyPoolOptions::new()
            // A database that cannot be reached is reported soon, not after 30 s.
            .acquire_timeout(std::time::Duration::from_secs(10))
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // The WAL is copied back into the database every 64 MB
                        // (16384 pages), not every 4 MB: a detection run that
                        // writes 50,000 drafts rewrote the same index pages at
                        // each of dozens of checkpoints (2.0 s against 1.6 s).
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA wal_autocheckpoint = 16384;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("Failed to connect to the database")?;
        Ok(Self { pool, backend })
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The migrations this binary has that the database has not applied, as
    /// `0003 replies`; all of them for a database never migrated.
    pub async fn pending_migrations(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = self.conn().await?;
        // No table yet: nothing was ever applied.
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
        Ok(self
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
            .map(|m| format!("{:04} {}", m.version, m.description))
            .collect())
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator()
            .run(&self.pool)
            .await
            .context("Failed to apply database migrations")
    }

    pub async fn begin(&self) -> anyhow::Result<Transaction<'static, sqlx::Any>> {
        self.pool
            .begin()
            .await
            .context("Failed to begin a database transaction")
    }

    pub async fn conn(&self) -> anyhow::Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.pool
            .acquire()
            .await
            .context("Failed to get a database connection")
    }

    /// Answers whether the database is reachable, for `/healthz`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        conn.ping().await.context("The database did not answer")
    }

    /// Writes a consistent copy of a SQLite database to `path` (`VACUUM INTO`),
    /// safe while `serve` runs. PostgreSQL has its own tools (`pg_dump`).
    pub async fn backup_to(&self, path: &Path) -> anyhow::Result<()> {
        if self.backend != Backend::Sqlite {
            anyhow::bail!(
                "backup copies SQLite databases; for PostgreSQL use pg_dump (see the README)"
            );
        }
        if path.exists() {
            anyhow::bail!("{} exists already; choose a new file", path.display());
        }
        let mut conn = self.conn().await?;
        sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&mut *conn)
            .await
            .with_context(|| format!("Failed to write the backup to {}", path.display()))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Keeps `clients.next_detect_at` honest when the cadence changes: those times
    /// were computed from the cadence, so a changed cadence makes every active client
    /// due for one fresh look. The first fingerprint is simply recorded.
    pub async fn sync_cadence(&self, fingerprint: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM app_state WHERE key = 'cadence'")
                .fetch_optional(&mut *tx)
                .await?;
        match stored {
            Some(ref s) if s == fingerprint => return Ok(()),
            Some(_) => {
                sqlx::query("UPDATE clients SET next_detect_at = $1 WHERE status = 'active'")
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE app_state SET value = $1 WHERE key = 'cadence'")
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("INSERT INTO app_state (key, value) VALUES ('cadence', $1)")
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await.context("Failed to record the cadence")
    }
}

impl Store {
    /// The signing key kept in the database, made on first use. Every instance
    /// on the same database shares it, and it survives restarts.
    pub async fn stored_secret_key(&self) -> anyhow::Result<SecretString> {
        let mut conn = self.conn().await?;
        let fresh = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        sqlx::query("INSERT INTO app_state (key, value) VALUES ('secret_key', $1) ON CONFLICT (key) DO NOTHING")
            .bind(&fresh)
            .execute(&mut *conn)
            .await?;
        let key: String =
            sqlx::query_scalar("SELECT value FROM app_state WHERE key = 'secret_key'")
                .fetch_one(&mut *conn)
                .await?;
        Ok(SecretString::from(key))
    }
}

/// Message counts by status, and attempt counts by channel and outcome, for metrics.
pub async fn counts(
    conn: &mut sqlx::AnyConnection,
) -> anyhow::Result<(Vec<(String, i64)>, Vec<(String, String, i64)>)> {
    let by_status = sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status")
        .fetch_all(&mut *conn)
        .await?;
    let by_outcome = sqlx::query_as(
        "SELECT channel, outcome, COUNT(*) FROM send_log \
         WHERE event = 'attempt' AND outcome IS NOT NULL GROUP BY channel, outcome",
    )
    .fetch_all(conn)
    .await?;
    Ok((by_status, by_outcome))
}

/// Crisis alerts nobody has acknowledged: how many, and the oldest's arrival.
pub async fn open_crisis_alerts(store: &Store) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
    let mut conn = store.conn().await?;
    inbound::open_crisis(&mut conn).await
}

/// How many crisis alerts have not gone out, for `/healthz`.
pub async fn inbound_alerts_pending(store: &Store) -> anyhow::Result<i64> {
    let mut conn = store.conn().await?;
    inbound::count_alerts_pending(&mut conn).await
}

/// When the oldest draft still waiting for a coach was made.
pub async fn oldest_pending_draft(
    conn: &mut sqlx::AnyConnection,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let oldest: Option<i64> =
        sqlx::query_scalar("SELECT MIN(created_at) FROM messages WHERE status = 'pending'")
            .fetch_one(conn)
            .await?;
    Ok(oldest.map(from_ts))
}

/// Adds `mode=rwc` (create if missing) to a SQLite URL and creates its folder.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("database.url: give SQLite a file path, like sqlite://data/reengage.db");
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).with_context(|| {
            format!("Failed to create the database folder {}", parent.display())
        })?;
    }
    Ok(if rest.contains('?') {
        format!("sqlite://{rest}")
    } else {
        format!("sqlite://{rest}?mode=rwc")
    })
}

#[cfg(test)]
mod dialect_tests {
    use super::*;

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
