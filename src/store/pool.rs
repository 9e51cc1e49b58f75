//! The connection pool, its migrations and the operations on the database as
//! a whole: opening, health, backup.

use std::path::Path;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor, Transaction};

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
                "backup copies SQLite databases; for PostgreSQL use pg_dump (see docs/operating.md, Backups)"
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
