//! The database layer: a blocking r2d2 pool of diesel connections, used from async handlers
//! through `web::block` (see [`run`]).
//!
//! Why blocking diesel rather than diesel-async: every write in passfold is a short
//! transaction with row locks, which diesel's synchronous `transaction` expresses exactly,
//! migrations need a synchronous connection anyway, and actix's blocking pool bounds the
//! concurrency to the pool size. One way to talk to the database, everywhere.

pub mod cluster;
mod tenant;

pub use tenant::Tenant;

use crate::configuration::Settings;
use crate::problem::ApiError;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

pub type DbPool = Pool<ConnectionManager<PgConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The constraint name the SQL functions give a lock wait that outlasted `lock_timeout` (see
/// migration 000021): diesel exposes no SQLSTATE, but it does expose the constraint.
pub const LOCK_TIMEOUT_CONSTRAINT: &str = "passfold_lock_timeout";

/// Whether a statement gave up waiting for a lock (raised by a function that guards its
/// waits; a plain statement's timeout is not recognised).
pub fn is_lock_timeout(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info)
        if info.constraint_name() == Some(LOCK_TIMEOUT_CONSTRAINT))
}

/// Key of the session advisory lock taken around migrations ("passfold" in ASCII), so two
/// processes starting together do not race.
const MIGRATION_LOCK_KEY: i64 = 0x7061_7373_6d69_6e74;

/// Where the service's database is: the configured server, or the private cluster whose
/// guard must live as long as the process uses it.
pub struct Database {
    pub url: String,
    pub cluster: Option<cluster::LocalCluster>,
}

impl Database {
    /// Uses `DATABASE_URL` when set, otherwise starts (or joins) the private cluster.
    pub fn open(settings: &Settings) -> anyhow::Result<Self> {
        match &settings.database_url {
            Some(url) => Ok(Database {
                url: url.clone(),
                cluster: None,
            }),
            None => {
                let cluster = cluster::LocalCluster::start(
                    &settings.data_dir,
                    settings.pg_bin_dir.as_deref(),
                )?;
                Ok(Database {
                    url: cluster.database_url(),
                    cluster: Some(cluster),
                })
            }
        }
    }
}

pub fn build_pool(url: &str, size: u32) -> anyhow::Result<DbPool> {
    build_pool_keeping(url, size, 1)
}

/// A pool that keeps `min_idle` connections open. A run that ends by itself (`worker
/// --once`) keeps none: r2d2 would otherwise be opening a replacement on a background
/// thread as the process exits, and libpq's SCRAM (OpenSSL) on that thread races OpenSSL's
/// clean-up at exit (a SIGSEGV after the work was done).
pub fn build_pool_keeping(url: &str, size: u32, min_idle: u32) -> anyhow::Result<DbPool> {
    let manager = ConnectionManager::<PgConnection>::new(url);
    Pool::builder()
        .max_size(size)
        .min_idle(Some(min_idle))
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(false)
        .connection_customizer(Box::new(SessionLimits))
        .build(manager)
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))
}

/// Bounds on every pooled session: a request waiting for a row or key lock gives up after
/// 10 s (answered as "in use" or "unavailable", never a hung till), no statement runs
/// longer than 30 s.
#[derive(Debug)]
struct SessionLimits;

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionLimits {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("SET lock_timeout = '10s'; SET statement_timeout = '30s'")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Runs pending migrations under an advisory lock.
pub fn migrate(url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(url)
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
    use diesel::RunQueryDsl;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"));
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)?;
    let applied = result?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    Ok(())
}

/// Runs blocking database work on actix's blocking pool with a pooled connection.
pub async fn run<T, F>(pool: &DbPool, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}
