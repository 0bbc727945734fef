//! Purchase history from the old system, attached to members by their external id and
//! stored as purchases (so RFM scores, segments and analytics count them) that earned no
//! points: the balance came in the members file. Each purchase's id is derived from the
//! member and its `purchase_id` (or, without one, the row's content), so the same file run
//! twice inserts nothing the second time.

use super::{Outcome, Row, RowError, Writer};
use crate::db::Tenant;
use crate::domain::{ranges, Currency};
use crate::loyalty::ProgramRules;
use crate::models::Program;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use sha1::{Digest, Sha1};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub const COLUMNS: &[&str] = &[
    "external_id",
    "amount",
    "currency",
    "purchased_at",
    "purchase_id",
];
pub const REQUIRED: &[&str] = &["external_id", "amount", "purchased_at"];

const EXTERNAL_ID: usize = 0;
const AMOUNT: usize = 1;
const CURRENCY: usize = 2;
const PURCHASED_AT: usize = 3;
const PURCHASE_ID: usize = 4;

pub struct Purchases {
    tenant: Tenant,
    program: Program,
    rules: ProgramRules,
    now: DateTime<Utc>,
    dry_run: bool,
    /// Purchases met earlier in the file (a dry run writes nothing to find them by).
    seen: HashSet<Uuid>,
}

struct Valid {
    line: i64,
    external_id: String,
    amount: i64,
    bought_at: DateTime<Utc>,
    /// `purchase_id`, or the row's content when there is none.
    key: String,
}

impl Purchases {
    pub fn new(
        tenant: Tenant,
        program: Program,
        rules: ProgramRules,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Self {
        Purchases {
            tenant,
            program,
            rules,
            now,
            dry_run,
            seen: HashSet::new(),
        }
    }

    fn check(&self, row: &Row) -> Result<Valid, Vec<RowError>> {
        let line = row.line;
        let mut errors = Vec::new();
        let external_id = row.get(EXTERNAL_ID).unwrap_or_default().to_string();
        if external_id.is_empty() {
            errors.push(RowError::new(
                line,
                Some("external_id"),
                "required: the member's id in the old system",
            ));
        }
        let amount = match row.get(AMOUNT).map(str::parse::<i64>) {
            Some(Ok(a)) if (1..=ranges::MAX_AMOUNT).contains(&a) => a,
            _ => {
                errors.push(RowError::new(
                    line,
                    Some("amount"),
                    format!("minor units from 1 to {}", ranges::MAX_AMOUNT),
                ));
                0
            }
        };
        match row.get(CURRENCY).map(Currency::parse) {
            None => {}
            Some(Ok(c)) if c == self.rules.currency => {}
            Some(Ok(c)) => errors.push(RowError::new(
                line,
                Some("currency"),
                format!(
                    "the program counts purchases in {}, not {c}",
                    self.rules.currency
                ),
            )),
            Some(Err(e)) => errors.push(RowError::new(line, Some("currency"), e)),
        }
        let bought_at = match row
            .get(PURCHASED_AT)
            .and_then(|t| instant(t, self.program.tz()))
        {
            Some(t) if t <= self.now => t,
            Some(_) => {
                errors.push(RowError::new(line, Some("purchased_at"), "in the future"));
                self.now
            }
            None => {
                errors.push(RowError::new(
                    line,
                    Some("purchased_at"),
                    "an RFC 3339 time (2024-03-01T10:00:00Z) or a date (2024-03-01)",
                ));
                self.now
            }
        };
        let key = match row.get(PURCHASE_ID) {
            Some(id) => format!("id:{id}"),
            None => format!("row:{amount}:{}", bought_at.to_rfc3339()),
        };
        if errors.is_empty() {
            Ok(Valid {
                line,
                external_id,
                amount,
                bought_at,
                key,
            })
        } else {
            Err(errors)
        }
    }
}

/// An RFC 3339 time, or a date (its midnight in the program's time zone): a purchase's
/// time and a member's joining date.
pub(super) fn instant(text: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?
        .and_local_timezone(tz)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The purchase's id: a name-based (SHA-1) UUID of the member and the purchase's key.
fn purchase_id(member: Uuid, key: &str) -> Uuid {
    let mut hash = Sha1::new();
    hash.update(b"passfold.import.purchase:");
    hash.update(member.as_bytes());
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

#[derive(QueryableByName)]
struct MemberId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    external_id: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Writer for Purchases {
    fn batch(&mut self, conn: &mut PgConnection, rows: Vec<Row>) -> QueryResult<Outcome> {
        let mut outcome = Outcome::default();
        let mut valid = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.check(row) {
                Ok(v) => valid.push(v),
                Err(e) => outcome.errors.extend(e),
            }
        }
        let wanted: Vec<&str> = valid.iter().map(|v| v.external_id.as_str()).collect();
        // One probe of the unique index per distinct id (see `members::existing_ids`: the
        // members file just imported has no statistics yet).
        let members: HashMap<String, Uuid> = diesel::sql_query(
            "SELECT m.id, x.external_id FROM (SELECT DISTINCT unnest($3::text[])) AS x (external_id)
               CROSS JOIN LATERAL (SELECT id FROM members
                                    WHERE program_id = $2 AND external_id = x.external_id
                                      AND merchant_id = $1
                                    LIMIT 1) AS m",
        )
        .bind::<SqlUuid, _>(self.tenant.merchant_id())
        .bind::<SqlUuid, _>(self.program.id)
        .bind::<Array<Text>, _>(&wanted)
        .load::<MemberId>(conn)?
        .into_iter()
        .map(|m| (m.external_id, m.id))
        .collect();
        let (mut ids, mut owners, mut amounts, mut times) = (vec![], vec![], vec![], vec![]);
        let mut batch = HashSet::new();
        for v in valid {
            let Some(member) = members.get(&v.external_id) else {
                outcome.errors.push(RowError::new(
                    v.line,
                    Some("external_id"),
                    "no member of the program has this external id",
                ));
                continue;
            };
            let id = purchase_id(*member, &v.key);
            if !batch.insert(id) || self.seen.contains(&id) {
                outcome.skipped += 1;
                continue;
            }
            ids.push(id);
            owners.push(*member);
            amounts.push(v.amount);
            times.push(v.bought_at);
        }
        if ids.is_empty() {
            return Ok(outcome);
        }
        if self.dry_run {
            let present = diesel::sql_query(
                "SELECT count(*) AS n FROM purchases WHERE merchant_id = $1 AND id = ANY ($2)",
            )
            .bind::<SqlUuid, _>(self.tenant.merchant_id())
            .bind::<Array<SqlUuid>, _>(&ids)
            .get_result::<Count>(conn)?
            .n;
            outcome.skipped += present;
            self.seen.extend(ids);
            return Ok(outcome);
        }
        let inserted = diesel::sql_query(
            "WITH i AS (
             INSERT INTO purchases (id, merchant_id, member_id, amount, currency, points_earned,
                                    purchased_at)
             SELECT u.id, $1, u.member, u.amount, $2, 0, u.at
               FROM unnest($3::uuid[], $4::uuid[], $5::int8[], $6::timestamptz[])
                    AS u (id, member, amount, at)
             ON CONFLICT (id) DO NOTHING
             RETURNING 1)
             SELECT count(*) AS n FROM i",
        )
        .bind::<SqlUuid, _>(self.tenant.merchant_id())
        .bind::<Text, _>(self.rules.currency.code())
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<SqlUuid>, _>(&owners)
        .bind::<Array<BigInt>, _>(&amounts)
        .bind::<Array<Timestamptz>, _>(&times)
        .get_result::<Count>(conn)?
        .n;
        outcome.imported += inserted;
        outcome.skipped += ids.len() as i64 - inserted;
        Ok(outcome)
    }
}
