//! Signed passes kept in memory, so a phone or customer fetching an unchanged pass costs
//! neither a signature nor a database query.
//!
//! Correctness comes from PostgreSQL. The process that changes a pass evicts it itself once
//! its transaction commits; other processes hear of it through NOTIFY, sent by the outbox
//! delivery worker when it claims the change (every change has an outbox row, so a crash
//! between the commit and the notice loses nothing), before any push goes out. Template
//! changes NOTIFY from a trigger (migration `pass_change_notifications`). Writers do not
//! NOTIFY themselves: PostgreSQL serialises the commits of notifying transactions, which
//! capped redemptions at one WAL flush at a time. A listener thread per process evicts what
//! changed. While the listener is not connected nothing is served from the cache, and an
//! entry is only stored if no eviction happened while it was being built, so a change can
//! never be hidden by bytes built just before it.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use uuid::Uuid;

pub struct CachedPass {
    pub pass_id: Uuid,
    pub template: (Uuid, String),
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    pub bytes: Bytes,
}

#[derive(Default)]
struct Entries {
    by_token: HashMap<String, Arc<CachedPass>>,
    token_of: HashMap<Uuid, String>,
    bytes: usize,
}

pub struct PassCache {
    entries: Mutex<Entries>,
    limit: usize,
    listening: AtomicBool,
    /// Bumped by every eviction; see [`PassCache::generation`].
    generation: AtomicU64,
}

const POLL: Duration = Duration::from_millis(10);

impl PassCache {
    /// A cache of at most `limit` bytes, kept current by a listener on `database_url`.
    pub fn start(database_url: Option<String>, limit: usize) -> Arc<Self> {
        let cache = Arc::new(PassCache {
            entries: Mutex::default(),
            limit,
            listening: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        });
        if let (Some(url), true) = (database_url, limit > 0) {
            let weak = Arc::downgrade(&cache);
            let spawned = std::thread::Builder::new()
                .name("pass-cache-listener".into())
                .spawn(move || listen(weak, &url));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "pass cache disabled: cannot start its listener");
            }
        }
        cache
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read before loading a pass from the database; hand it back to [`Self::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn get(&self, token: &str) -> Option<Arc<CachedPass>> {
        if !self.listening.load(Ordering::SeqCst) {
            return None;
        }
        self.lock().by_token.get(token).cloned()
    }

    pub fn insert(&self, token: &str, pass: CachedPass, generation: u64) {
        if !self.listening.load(Ordering::SeqCst) || pass.bytes.len() > self.limit / 4 {
            return;
        }
        let mut e = self.lock();
        // Checked under the lock, which evictions also take.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        while e.bytes + pass.bytes.len() > self.limit {
            let Some(victim) = e.by_token.keys().next().cloned() else {
                break;
            };
            remove(&mut e, &victim);
        }
        remove(&mut e, token);
        e.bytes += pass.bytes.len();
        e.token_of.insert(pass.pass_id, token.to_string());
        e.by_token.insert(token.to_string(), Arc::new(pass));
    }

    pub fn evict_pass(&self, pass_id: Uuid) {
        let mut e = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(token) = e.token_of.get(&pass_id).cloned() {
            remove(&mut e, &token);
        }
    }

    pub fn evict_template(&self, merchant_id: Uuid, template_id: &str) {
        let mut e = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let victims: Vec<String> = e
            .by_token
            .iter()
            .filter(|(_, p)| p.template.0 == merchant_id && p.template.1 == template_id)
            .map(|(t, _)| t.clone())
            .collect();
        for token in victims {
            remove(&mut e, &token);
        }
    }

    /// Drops every pass of a merchant (a program change may touch any of them).
    pub fn evict_merchant(&self, merchant_id: Uuid) {
        let mut e = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let victims: Vec<String> = e
            .by_token
            .iter()
            .filter(|(_, p)| p.template.0 == merchant_id)
            .map(|(t, _)| t.clone())
            .collect();
        for token in victims {
            remove(&mut e, &token);
        }
    }

    fn clear(&self) {
        let mut e = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        *e = Entries::default();
    }

    pub fn len(&self) -> usize {
        self.lock().by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn remove(e: &mut Entries, token: &str) {
    if let Some(p) = e.by_token.remove(token) {
        e.bytes -= p.bytes.len();
        e.token_of.remove(&p.pass_id);
    }
}

/// Tells every process's cache that these passes changed (delivered when the statement
/// commits, so call it outside a longer transaction). Large sets become one "everything".
pub fn announce(conn: &mut PgConnection, pass_ids: &[Uuid]) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if pass_ids.is_empty() {
        return Ok(());
    }
    let payload = if pass_ids.len() > ANNOUNCE_MAX {
        "*".to_string()
    } else {
        pass_ids
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    diesel::sql_query("SELECT pg_notify('passfold_pass_changed', $1)")
        .bind::<diesel::sql_types::Text, _>(payload)
        .execute(conn)?;
    Ok(())
}

/// Ids per notice: NOTIFY payloads stay under 8,000 bytes.
const ANNOUNCE_MAX: usize = 200;

/// Listens for changes until the cache is dropped, reconnecting after errors.
fn listen(cache: Weak<PassCache>, url: &str) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        let connected = PgConnection::establish(url)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                conn.batch_execute(
                    "LISTEN passfold_pass_changed; LISTEN passfold_template_changed",
                )
                .map_err(|e| e.to_string())?;
                Ok(conn)
            });
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(error = %e, "pass cache listener cannot connect; retrying");
                drop(strong);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Whatever changed while nobody listened is unknown: start empty.
        strong.clear();
        strong.listening.store(true, Ordering::SeqCst);
        drop(strong);
        loop {
            let Some(cache) = cache.upgrade() else { return };
            let mut failed = false;
            for note in conn.notifications_iter() {
                match note {
                    Ok(n) if n.channel == "passfold_pass_changed" => {
                        // "*": a bulk change; forget everything rather than 100,000 entries.
                        if n.payload == "*" {
                            cache.clear();
                        } else {
                            for id in n
                                .payload
                                .split(',')
                                .filter_map(|id| Uuid::parse_str(id).ok())
                            {
                                cache.evict_pass(id);
                            }
                        }
                    }
                    Ok(n) => {
                        if let Some((merchant, template)) = n.payload.split_once('/') {
                            if let Ok(merchant) = Uuid::parse_str(merchant) {
                                cache.evict_template(merchant, template);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pass cache listener lost its connection");
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                cache.listening.store(false, Ordering::SeqCst);
                cache.clear();
                break;
            }
            drop(cache);
            std::thread::sleep(POLL);
        }
    }
}
