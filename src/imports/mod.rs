//! CSV imports (docs/IMPORTS.md): a merchant's members, their purchase history and gift
//! cards from the old system. The upload is streamed into `import_chunks` (never held whole
//! in memory, readable by any worker process); the `imports` job reads it back through the
//! `csv` crate and hands batches of rows to the writer of its kind ([`members`],
//! [`purchases`], [`gift_cards`]), each batch in one transaction with the import's counts,
//! so that a crash resumes at the last batch committed and nothing is written twice.

pub mod gift_cards;
pub mod members;
pub mod purchases;

use crate::db::Tenant;
use crate::pass_events::Channels;
use crate::schema::{import_chunks, import_errors, imports};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The largest file accepted.
pub const MAX_BYTES: usize = 100 * 1024 * 1024;
/// Rows per transaction. A batch is a fixed handful of set-based statements, so its
/// overhead (round trips, planning, a commit) is paid per batch, and a larger one pays it
/// less often: 5,000 members took 10% less time than 5 x 1,000 (docs/PERFORMANCE.md),
/// while a batch still commits within a second or two, so a member it locks (a join with
/// the same email) waits no longer than that.
pub const BATCH: usize = 5000;
/// Errors kept per import (the count goes on).
pub const MAX_ERRORS_KEPT: i64 = 1000;
/// How long a worker holds an import between batches before another may resume it.
const LEASE_SECS: f64 = 120.0;
/// A job run hands the loop back after this long (other jobs wait for it otherwise).
const SLICE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Members,
    Purchases,
    GiftCards,
}

impl Kind {
    pub fn parse(word: &str) -> Option<Kind> {
        match word {
            "members" => Some(Kind::Members),
            "purchases" => Some(Kind::Purchases),
            "gift_cards" => Some(Kind::GiftCards),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Members => "members",
            Kind::Purchases => "purchases",
            Kind::GiftCards => "gift_cards",
        }
    }

    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Kind::Members => (members::COLUMNS, members::REQUIRED),
            Kind::Purchases => (purchases::COLUMNS, purchases::REQUIRED),
            Kind::GiftCards => (gift_cards::COLUMNS, gift_cards::REQUIRED),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = imports)]
pub struct Import {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub kind: String,
    pub program_id: Option<Uuid>,
    pub template_id: Option<String>,
    pub dry_run: bool,
    pub state: String,
    pub bytes: i64,
    pub rows: i64,
    pub imported: i64,
    pub skipped: i64,
    pub error_count: i64,
    pub failure: Option<String>,
    pub leased_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The file's SHA-256 (hex), known once it is all in.
    pub sha256: Option<String>,
}

/// One refused row (or field).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct RowError {
    /// The file's physical line on which the row starts (the header is line 1; a quoted
    /// field holding line breaks makes a row span several lines).
    pub line: i64,
    /// The header's name of the field at fault; null for the row as a whole.
    pub column: Option<String>,
    pub message: String,
}

impl RowError {
    pub fn new(line: i64, column: Option<&str>, message: impl Into<String>) -> Self {
        RowError {
            line,
            column: column.map(str::to_string),
            message: message.into(),
        }
    }
}

/// An import as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportView {
    pub id: Uuid,
    pub kind: Kind,
    /// `queued`, `validating` (a dry run), `importing`, `done` or `failed`.
    pub state: String,
    pub dry_run: bool,
    pub program_id: Option<Uuid>,
    /// Size of the file, bytes.
    pub bytes: i64,
    /// Data rows read so far (the header not counted).
    pub rows: i64,
    /// Rows written (0 in a dry run).
    pub imported: i64,
    /// Rows already present (same external id, GAN or purchase), left as they are.
    pub skipped: i64,
    /// Rows refused, all of them; `errors` lists the first 1,000.
    pub error_count: i64,
    pub errors: Vec<RowError>,
    /// Why the whole file was refused (state `failed`).
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a new import names.
pub struct Request {
    pub kind: Kind,
    pub program_id: Option<Uuid>,
    pub template_id: Option<String>,
    pub dry_run: bool,
}

/// Starts an import in state `receiving`; its chunks follow.
pub fn begin(
    conn: &mut PgConnection,
    tenant: &Tenant,
    request: &Request,
    at: DateTime<Utc>,
) -> QueryResult<Uuid> {
    let id = Uuid::new_v4();
    diesel::insert_into(imports::table)
        .values((
            imports::id.eq(id),
            imports::merchant_id.eq(tenant.merchant_id()),
            imports::kind.eq(request.kind.as_str()),
            imports::program_id.eq(request.program_id),
            imports::template_id.eq(&request.template_id),
            imports::dry_run.eq(request.dry_run),
            imports::state.eq("receiving"),
            imports::created_at.eq(at),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Stores chunk `n` of the file.
pub fn append(
    conn: &mut PgConnection,
    tenant: &Tenant,
    import: Uuid,
    n: i32,
    data: &[u8],
) -> QueryResult<()> {
    diesel::insert_into(import_chunks::table)
        .values((
            import_chunks::merchant_id.eq(tenant.merchant_id()),
            import_chunks::import_id.eq(import),
            import_chunks::n.eq(n),
            import_chunks::data.eq(data),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The whole file is in, `bytes` long with the SHA-256 `sha256`: the import waits for the job.
pub fn received(
    conn: &mut PgConnection,
    import: Uuid,
    bytes: i64,
    sha256: &str,
) -> QueryResult<()> {
    diesel::update(imports::table.find(import))
        .set((
            imports::state.eq("queued"),
            imports::bytes.eq(bytes),
            imports::sha256.eq(sha256),
        ))
        .execute(conn)
        .map(|_| ())
}

/// An upload that did not complete: its chunks are dropped.
pub fn abandon(conn: &mut PgConnection, import: Uuid) -> QueryResult<()> {
    diesel::delete(imports::table.find(import))
        .execute(conn)
        .map(|_| ())
}

/// The errors of these imports (of `merchant`), in their order, one query for them all.
fn errors_of(
    conn: &mut PgConnection,
    merchant: Uuid,
    ids: &[Uuid],
) -> QueryResult<std::collections::HashMap<Uuid, Vec<RowError>>> {
    let mut out: std::collections::HashMap<Uuid, Vec<RowError>> = Default::default();
    let rows = import_errors::table
        .filter(import_errors::merchant_id.eq(merchant))
        .filter(import_errors::import_id.eq_any(ids))
        .order((import_errors::import_id, import_errors::n))
        .select((
            import_errors::import_id,
            import_errors::line,
            import_errors::column_name,
            import_errors::message,
        ))
        .load::<(Uuid, i64, Option<String>, String)>(conn)?;
    for (import, line, column, message) in rows {
        out.entry(import).or_default().push(RowError {
            line,
            column,
            message,
        });
    }
    Ok(out)
}

fn view(i: Import, errors: Vec<RowError>) -> ImportView {
    ImportView {
        id: i.id,
        kind: Kind::parse(&i.kind).unwrap_or(Kind::Members),
        state: i.state,
        dry_run: i.dry_run,
        program_id: i.program_id,
        bytes: i.bytes,
        rows: i.rows,
        imported: i.imported,
        skipped: i.skipped,
        error_count: i.error_count,
        errors,
        failure: i.failure,
        created_at: i.created_at,
        finished_at: i.finished_at,
    }
}

/// One import of the merchant, with its errors.
pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<ImportView> {
    let i = imports::table
        .filter(imports::merchant_id.eq(tenant.merchant_id()))
        .filter(imports::id.eq(id))
        .filter(imports::state.ne("receiving"))
        .select(Import::as_select())
        .first(conn)?;
    let errors = errors_of(conn, i.merchant_id, &[i.id])?
        .remove(&i.id)
        .unwrap_or_default();
    Ok(view(i, errors))
}

/// A page of the merchant's imports, newest first; the cursor is the last one's id.
pub fn page(
    conn: &mut PgConnection,
    tenant: &Tenant,
    limit: i64,
    after: Option<Uuid>,
) -> QueryResult<(Vec<ImportView>, Option<String>)> {
    let mut query = imports::table
        .filter(imports::merchant_id.eq(tenant.merchant_id()))
        .filter(imports::state.ne("receiving"))
        .into_boxed();
    if let Some(after) = after {
        let (at, id): (DateTime<Utc>, Uuid) = imports::table
            .filter(imports::merchant_id.eq(tenant.merchant_id()))
            .filter(imports::id.eq(after))
            .select((imports::created_at, imports::id))
            .first(conn)?;
        query = query.filter(
            imports::created_at
                .lt(at)
                .or(imports::created_at.eq(at).and(imports::id.lt(id))),
        );
    }
    let rows = query
        .order((imports::created_at.desc(), imports::id.desc()))
        .limit(limit + 1)
        .select(Import::as_select())
        .load(conn)?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<Import> = rows.into_iter().take(limit as usize).collect();
    let ids: Vec<Uuid> = rows.iter().map(|i| i.id).collect();
    let mut errors = errors_of(conn, tenant.merchant_id(), &ids)?;
    let out: Vec<ImportView> = rows
        .into_iter()
        .map(|i| {
            let e = errors.remove(&i.id).unwrap_or_default();
            view(i, e)
        })
        .collect();
    let next = more.then(|| out.last().map(|v| v.id.to_string())).flatten();
    Ok((out, next))
}

/// One data row: its first line and its fields by the writer's column order (`None` for a
/// column the file lacks or a field left empty).
pub struct Row {
    pub line: i64,
    fields: Vec<Option<String>>,
}

impl Row {
    /// The field of column `i` of the writer's `COLUMNS`, trimmed; `None` when empty.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.fields.get(i).and_then(|f| f.as_deref())
    }
}

/// What a batch did.
#[derive(Default)]
pub struct Outcome {
    pub imported: i64,
    pub skipped: i64,
    pub errors: Vec<RowError>,
}

/// A kind's writer: checks and writes a batch of rows in the caller's transaction (in a dry
/// run, checks only, as far as the database allows without writing).
pub trait Writer {
    fn batch(&mut self, conn: &mut PgConnection, rows: Vec<Row>) -> QueryResult<Outcome>;
}

/// Reads an import's chunks in order, fetching each when the previous is used up.
struct Chunks<'c, 'x> {
    conn: &'c RefCell<&'x mut PgConnection>,
    merchant: Uuid,
    import: Uuid,
    next: i32,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl std::io::Read for Chunks<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            let mut conn = self.conn.borrow_mut();
            let chunk: Option<Vec<u8>> = import_chunks::table
                .filter(import_chunks::merchant_id.eq(self.merchant))
                .filter(import_chunks::import_id.eq(self.import))
                .filter(import_chunks::n.eq(self.next))
                .select(import_chunks::data)
                .first(&mut **conn)
                .optional()
                .map_err(std::io::Error::other)?;
            match chunk {
                Some(data) => {
                    self.buf = data;
                    self.pos = 0;
                    self.next += 1;
                }
                None => self.done = true,
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Claims the oldest import waiting (or one whose worker's lease lapsed) and works on it
/// for up to [`SLICE`]; returns the rows handled (0 when none waits).
pub fn run_next(
    conn: &mut PgConnection,
    channels: Channels,
    now: DateTime<Utc>,
    max_balance: i64,
) -> anyhow::Result<usize> {
    let claimed: Option<Import> = conn.transaction(|conn| {
        let next: Option<Uuid> = imports::table
            .filter(imports::state.eq_any(["queued", "validating", "importing"]))
            .filter(
                imports::leased_until
                    .is_null()
                    .or(imports::leased_until.lt(diesel::dsl::now)),
            )
            .order(imports::created_at)
            .select(imports::id)
            .for_update()
            .skip_locked()
            .first(conn)
            .optional()?;
        let Some(id) = next else {
            return Ok::<_, diesel::result::Error>(None);
        };
        diesel::sql_query(
            "UPDATE imports SET leased_until = now() + make_interval(secs => $2),
                    state = CASE WHEN state = 'queued'
                                 THEN CASE WHEN dry_run THEN 'validating' ELSE 'importing' END
                                 ELSE state END
              WHERE id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Double, _>(LEASE_SECS)
        .execute(conn)?;
        imports::table
            .find(id)
            .select(Import::as_select())
            .first(conn)
            .optional()
    })?;
    let Some(import) = claimed else {
        return Ok(0);
    };
    work(conn, (channels, max_balance), now, import)
}

fn fail(conn: &mut PgConnection, id: Uuid, why: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(imports::table.find(id))
        .set((
            imports::state.eq("failed"),
            imports::failure.eq(why),
            imports::finished_at.eq(now),
            imports::leased_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)?;
    diesel::delete(import_chunks::table.filter(import_chunks::import_id.eq(id)))
        .execute(conn)
        .map(|_| ())
}

/// Maps the header onto the kind's columns: unknown, repeated and missing required columns
/// refuse the file.
fn header_map(kind: Kind, header: &csv::ByteRecord) -> Result<Vec<Option<usize>>, String> {
    let (columns, required) = kind.columns();
    let mut map: Vec<Option<usize>> = vec![None; header.len()];
    let mut seen = vec![false; columns.len()];
    let mut unknown = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err("the header row is not UTF-8 text: is this a CSV file?".into());
        };
        let name = text
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase();
        match columns.iter().position(|c| *c == name) {
            Some(c) if seen[c] => return Err(format!("the column {name:?} appears twice")),
            Some(c) => {
                seen[c] = true;
                map[i] = Some(c);
            }
            None => unknown.push(format!("{:?}", name.chars().take(40).collect::<String>())),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown column{} {} (the columns of a {} file are {})",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", "),
            kind.as_str(),
            columns.join(", ")
        ));
    }
    let missing: Vec<&str> = required
        .iter()
        .filter(|r| !columns.iter().zip(&seen).any(|(c, s)| c == *r && *s))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the column(s) {} must be present",
            missing.join(", ")
        ));
    }
    Ok(map)
}

/// A record's fields by column, or what is wrong with it as a whole or per field.
fn to_row(
    record: &csv::ByteRecord,
    line: i64,
    map: &[Option<usize>],
    columns: &[&str],
) -> Result<Row, Vec<RowError>> {
    if record.len() != map.len() {
        return Err(vec![RowError::new(
            line,
            None,
            format!(
                "the row has {} fields, the header {}",
                record.len(),
                map.len()
            ),
        )]);
    }
    let mut fields = vec![None; columns.len()];
    let mut errors = Vec::new();
    for (i, raw) in record.iter().enumerate() {
        let Some(c) = map[i] else { continue };
        // The header named this field `columns[c]` (header_map matched it).
        let name = columns[c];
        match std::str::from_utf8(raw) {
            Err(_) => errors.push(RowError::new(line, Some(name), "not UTF-8 text")),
            Ok(t) if t.contains('\0') => errors.push(RowError::new(
                line,
                Some(name),
                "contains the NUL character, which cannot be stored",
            )),
            Ok(t) => {
                let t = t.trim();
                if !t.is_empty() {
                    fields[c] = Some(t.to_string());
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(Row { line, fields })
    } else {
        Err(errors)
    }
}

fn writer_for(
    conn: &mut PgConnection,
    (channels, max_balance): (Channels, i64),
    now: DateTime<Utc>,
    kind: Kind,
    import: &Import,
) -> anyhow::Result<Result<Box<dyn Writer>, String>> {
    let tenant = Tenant::of_authenticated(import.merchant_id);
    Ok(match kind {
        Kind::Members | Kind::Purchases => {
            let Some(program_id) = import.program_id else {
                return Ok(Err("no program named".into()));
            };
            let program = match crate::models::Program::find(conn, &tenant, program_id) {
                Ok(p) => p,
                Err(diesel::result::Error::NotFound) => return Ok(Err("no such program".into())),
                Err(e) => return Err(e.into()),
            };
            let rules = crate::loyalty::program::rules(&program)?;
            if kind == Kind::Members {
                Ok(Box::new(members::Members::new(
                    tenant,
                    program,
                    rules,
                    channels,
                    now,
                    import.dry_run,
                )))
            } else {
                Ok(Box::new(purchases::Purchases::new(
                    tenant,
                    program,
                    rules,
                    now,
                    import.dry_run,
                )))
            }
        }
        Kind::GiftCards => Ok(Box::new(gift_cards::GiftCards::new(
            tenant,
            import.template_id.clone().unwrap_or_default(),
            channels,
            import.dry_run,
            max_balance,
            import.sha256.clone(),
        ))),
    })
}

fn work(
    conn: &mut PgConnection,
    channels: (Channels, i64),
    now: DateTime<Utc>,
    import: Import,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let kind = Kind::parse(&import.kind).ok_or_else(|| anyhow::anyhow!("unknown import kind"))?;
    let mut writer = match writer_for(conn, channels, now, kind, &import)? {
        Ok(w) => w,
        Err(why) => {
            fail(conn, import.id, &why, now)?;
            return Ok(0);
        }
    };
    let cell = RefCell::new(conn);
    let chunks = Chunks {
        conn: &cell,
        merchant: import.merchant_id,
        import: import.id,
        next: 0,
        buf: Vec::new(),
        pos: 0,
        done: false,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(chunks);
    let mut header = csv::ByteRecord::new();
    let read_header = reader.read_byte_record(&mut header);
    let map = match read_header {
        Ok(true) => header_map(kind, &header),
        Ok(false) => Err("the file is empty: a header row is needed".into()),
        Err(e) if e.is_io_error() => return Err(e.into()),
        Err(e) => Err(format!("the header row cannot be read: {e}")),
    };
    let map = match map {
        Ok(m) => m,
        Err(why) => {
            drop(reader);
            fail(*cell.borrow_mut(), import.id, &why, now)?;
            return Ok(0);
        }
    };
    let columns = kind.columns().0;
    let mut record = csv::ByteRecord::new();
    // Rows before the checkpoint were handled by an earlier run.
    let mut read: i64 = 0;
    while read < import.rows {
        if !reader.read_byte_record(&mut record)? {
            break;
        }
        read += 1;
    }
    let mut handled = 0usize;
    let mut expected = import.rows;
    loop {
        let mut rows = Vec::with_capacity(BATCH);
        let mut errors = Vec::new();
        let mut n: i64 = 0;
        let mut eof = false;
        while (n as usize) < BATCH {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {
                    n += 1;
                    let line = record.position().map_or(0, |p| p.line() as i64);
                    match to_row(&record, line, &map, columns) {
                        Ok(row) => rows.push(row),
                        Err(e) => errors.extend(e),
                    }
                }
                Ok(false) => {
                    eof = true;
                    break;
                }
                Err(e) if e.is_io_error() => return Err(e.into()),
                Err(e) => {
                    n += 1;
                    let line = e.position().map_or(0, |p| p.line() as i64);
                    errors.push(RowError::new(line, None, format!("cannot be read: {e}")));
                }
            }
        }
        let mut guard = cell.borrow_mut();
        let conn: &mut PgConnection = &mut guard;
        let committed = conn.transaction(|conn| {
            // The checkpoint: another worker that took over a lapsed lease moved it.
            let at: Option<(i64, i64)> = imports::table
                .find(import.id)
                .filter(imports::state.eq_any(["validating", "importing"]))
                .select((imports::rows, imports::error_count))
                .for_update()
                .first(conn)
                .optional()?;
            let Some((rows_now, error_count)) = at.filter(|(r, _)| *r == expected) else {
                return Ok::<_, diesel::result::Error>(false);
            };
            let mut outcome = if rows.is_empty() {
                Outcome::default()
            } else {
                writer.batch(conn, std::mem::take(&mut rows))?
            };
            errors.append(&mut outcome.errors);
            errors.sort_by_key(|e| e.line);
            let keep = (MAX_ERRORS_KEPT - error_count).clamp(0, errors.len() as i64) as usize;
            if keep > 0 {
                let values: Vec<_> = errors[..keep]
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        (
                            import_errors::merchant_id.eq(import.merchant_id),
                            import_errors::import_id.eq(import.id),
                            import_errors::n.eq((error_count + i as i64) as i32),
                            import_errors::line.eq(e.line),
                            import_errors::column_name.eq(e.column.as_deref()),
                            import_errors::message.eq(e.message.as_str()),
                        )
                    })
                    .collect();
                diesel::insert_into(import_errors::table)
                    .values(values)
                    .execute(conn)?;
            }
            diesel::update(imports::table.find(import.id))
                .set((
                    imports::rows.eq(rows_now + n),
                    imports::imported.eq(imports::imported + outcome.imported),
                    imports::skipped.eq(imports::skipped + outcome.skipped),
                    imports::error_count.eq(imports::error_count + errors.len() as i64),
                ))
                .execute(conn)?;
            if eof {
                diesel::update(imports::table.find(import.id))
                    .set((
                        imports::state.eq("done"),
                        imports::finished_at.eq(now),
                        imports::leased_until.eq(None::<DateTime<Utc>>),
                    ))
                    .execute(conn)?;
                diesel::delete(import_chunks::table.filter(import_chunks::import_id.eq(import.id)))
                    .execute(conn)?;
            } else {
                diesel::sql_query(
                    "UPDATE imports SET leased_until = now() + make_interval(secs => $2) WHERE id = $1",
                )
                .bind::<diesel::sql_types::Uuid, _>(import.id)
                .bind::<diesel::sql_types::Double, _>(LEASE_SECS)
                .execute(conn)?;
            }
            Ok(true)
        })?;
        if !committed {
            tracing::warn!(import = %import.id, "import taken over by another worker; leaving it");
            return Ok(handled);
        }
        expected += n;
        handled += n as usize;
        if eof {
            return Ok(handled.max(1));
        }
        if started.elapsed() > SLICE {
            // Free for the next run (this process's or another's) at once.
            diesel::update(imports::table.find(import.id))
                .set(imports::leased_until.eq(None::<DateTime<Utc>>))
                .execute(conn)?;
            return Ok(handled);
        }
    }
}
