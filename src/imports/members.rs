//! Members from the old system: each new one enrolled as `POST /programs/{id}/members`
//! enrolls (details checked by `loyalty::enrollment::parse`, a card number, a referral code
//! and a pass, the pass's creation queued), but without welcome points or referral rewards
//! (an imported member is not a new join): their balance arrives as one `import` activity
//! and one lot, expiring per the program's `points_expire_days` from the import's time.
//! A batch is a handful of set-based statements, whatever its size. An external id the
//! program has is skipped, never updated.

use super::{Outcome, Row, RowError, Writer};
use crate::db::Tenant;
use crate::domain::{ranges, tokens, BirthDate, CardNumber, PointActivityType};
use crate::loyalty::enrollment::{self, Applicant};
use crate::loyalty::ProgramRules;
use crate::models::member::NewMember;
use crate::models::Program;
use crate::pass_events::Channels;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int2, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub const COLUMNS: &[&str] = &[
    "external_id",
    "name",
    "email",
    "phone",
    "points",
    "tier",
    "birth_date",
    "joined_at",
];
pub const REQUIRED: &[&str] = &["external_id", "name"];

const EXTERNAL_ID: usize = 0;
const NAME: usize = 1;
const EMAIL: usize = 2;
const PHONE: usize = 3;
const POINTS: usize = 4;
const TIER: usize = 5;
const BIRTH_DATE: usize = 6;
const JOINED_AT: usize = 7;

pub struct Members {
    tenant: Tenant,
    program: Program,
    rules: ProgramRules,
    channels: Channels,
    now: DateTime<Utc>,
    dry_run: bool,
    /// A dry run writes nothing, so later batches learn of earlier rows from these.
    seen_ids: HashSet<String>,
    seen_contacts: HashSet<String>,
}

/// A row that passed the checks.
struct Valid {
    line: i64,
    new: NewMember,
    points: i64,
    tier: Option<String>,
    joined: Option<DateTime<Utc>>,
}

impl Members {
    pub fn new(
        tenant: Tenant,
        program: Program,
        rules: ProgramRules,
        channels: Channels,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Self {
        Members {
            tenant,
            program,
            rules,
            channels,
            now,
            dry_run,
            seen_ids: HashSet::new(),
            seen_contacts: HashSet::new(),
        }
    }

    fn check(&self, row: &Row) -> Result<Valid, Vec<RowError>> {
        let line = row.line;
        let mut errors = Vec::new();
        let column = |pointer: &str| -> &'static str {
            COLUMNS
                .iter()
                .find(|c| pointer.trim_start_matches('/') == **c)
                .copied()
                .unwrap_or("name")
        };
        if row.get(EXTERNAL_ID).is_none() {
            errors.push(RowError::new(
                line,
                Some("external_id"),
                "required: the member's id in the old system",
            ));
        }
        let parsed = enrollment::parse(Applicant {
            name: row.get(NAME).unwrap_or_default().to_string(),
            email: row.get(EMAIL).map(str::to_string),
            phone: row.get(PHONE).map(str::to_string),
            external_id: row.get(EXTERNAL_ID).map(str::to_string),
            birth_date: row.get(BIRTH_DATE).map(str::parse::<BirthDate>),
        });
        let new = match parsed {
            Ok(new) => Some(new),
            Err(problems) => {
                errors.extend(
                    problems
                        .into_iter()
                        .map(|p| RowError::new(line, Some(column(&p.pointer)), p.detail)),
                );
                None
            }
        };
        let points = match row.get(POINTS).map(str::parse::<i64>) {
            None => 0,
            Some(Ok(p)) if (0..=ranges::MAX_POINTS_CHANGE).contains(&p) => p,
            Some(_) => {
                errors.push(RowError::new(
                    line,
                    Some("points"),
                    format!(
                        "a whole number of points from 0 to {}",
                        ranges::MAX_POINTS_CHANGE
                    ),
                ));
                0
            }
        };
        let tier = match row.get(TIER) {
            None => self.rules.tier_for(points).map(|t| t.name.clone()),
            Some(given) => {
                match self
                    .rules
                    .tiers
                    .iter()
                    .find(|t| t.name.eq_ignore_ascii_case(given))
                {
                    Some(t) => Some(t.name.clone()),
                    None => {
                        let names: Vec<&str> =
                            self.rules.tiers.iter().map(|t| t.name.as_str()).collect();
                        errors.push(RowError::new(
                            line,
                            Some("tier"),
                            if names.is_empty() {
                                "the program has no tiers".to_string()
                            } else {
                                format!("not a tier of the program ({})", names.join(", "))
                            },
                        ));
                        None
                    }
                }
            }
        };
        let joined = match row.get(JOINED_AT) {
            None => None,
            Some(text) => match super::purchases::instant(text, self.program.tz()) {
                Some(t) if t <= self.now => Some(t),
                Some(_) => {
                    errors.push(RowError::new(line, Some("joined_at"), "in the future"));
                    None
                }
                None => {
                    errors.push(RowError::new(
                        line,
                        Some("joined_at"),
                        "an RFC 3339 time (2024-03-01T10:00:00Z) or a date (2024-03-01)",
                    ));
                    None
                }
            },
        };
        match new {
            Some(new) if errors.is_empty() => Ok(Valid {
                line,
                new,
                points,
                tier,
                joined,
            }),
            _ => Err(errors),
        }
    }
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    key: String,
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

impl Members {
    /// External ids of `ids` the program has.
    fn existing_ids(&self, conn: &mut PgConnection, ids: &[&str]) -> QueryResult<HashSet<String>> {
        // One probe of the unique index per id (LATERAL ... LIMIT 1): `external_id = ANY`
        // is planned from statistics, and a table that an import is filling has none yet
        // (autovacuum analyzes it a minute later), so the planner scanned every member of
        // the program per batch, which made an import quadratic.
        Ok(diesel::sql_query(
            "SELECT x.key FROM unnest($3::text[]) AS x (key)
               CROSS JOIN LATERAL (SELECT 1 FROM members m
                                    WHERE m.program_id = $2 AND m.external_id = x.key
                                      AND m.merchant_id = $1
                                    LIMIT 1) AS m",
        )
        .bind::<SqlUuid, _>(self.tenant.merchant_id())
        .bind::<SqlUuid, _>(self.program.id)
        .bind::<Array<Text>, _>(ids)
        .load::<Key>(conn)?
        .into_iter()
        .map(|k| k.key)
        .collect())
    }

    /// Emails (as `e:` + lower case) and phones (`p:`) of the given ones a member of the
    /// program has.
    fn existing_contacts(
        &self,
        conn: &mut PgConnection,
        emails: &[&str],
        phones: &[&str],
    ) -> QueryResult<HashSet<String>> {
        // Index probes per value, as in `existing_ids`.
        Ok(diesel::sql_query(
            "SELECT 'e:' || x.key AS key FROM unnest($3::text[]) AS x (key)
               CROSS JOIN LATERAL (SELECT 1 FROM members m
                                    WHERE m.program_id = $2 AND lower(m.email) = x.key
                                      AND m.merchant_id = $1
                                    LIMIT 1) AS m
             UNION ALL
             SELECT 'p:' || x.key FROM unnest($4::text[]) AS x (key)
               CROSS JOIN LATERAL (SELECT 1 FROM members m
                                    WHERE m.program_id = $2 AND m.phone = x.key
                                      AND m.merchant_id = $1
                                    LIMIT 1) AS m",
        )
        .bind::<SqlUuid, _>(self.tenant.merchant_id())
        .bind::<SqlUuid, _>(self.program.id)
        .bind::<Array<Text>, _>(emails)
        .bind::<Array<Text>, _>(phones)
        .load::<Key>(conn)?
        .into_iter()
        .map(|k| k.key)
        .collect())
    }

    /// Sorts valid rows into new ones, skipped (external id present) and refused (a contact
    /// another member has).
    fn sort(
        &mut self,
        conn: &mut PgConnection,
        valid: Vec<Valid>,
        outcome: &mut Outcome,
    ) -> QueryResult<Vec<Valid>> {
        let ids: Vec<&str> = valid
            .iter()
            .filter_map(|v| v.new.external_id.as_deref())
            .collect();
        let present = self.existing_ids(conn, &ids)?;
        let emails: Vec<&str> = valid
            .iter()
            .filter_map(|v| v.new.email.as_deref())
            .collect();
        let phones: Vec<&str> = valid
            .iter()
            .filter_map(|v| v.new.phone.as_deref())
            .collect();
        let taken = self.existing_contacts(conn, &emails, &phones)?;
        let mut batch_ids = HashSet::new();
        let mut batch_contacts: HashMap<String, i64> = HashMap::new();
        let mut fresh = Vec::with_capacity(valid.len());
        for v in valid {
            let id = v.new.external_id.clone().unwrap_or_default();
            if present.contains(&id) || self.seen_ids.contains(&id) || !batch_ids.insert(id) {
                outcome.skipped += 1;
                continue;
            }
            let mut refused = false;
            for (column, key) in [
                ("email", v.new.email.as_ref().map(|e| format!("e:{e}"))),
                ("phone", v.new.phone.as_ref().map(|p| format!("p:{p}"))),
            ] {
                let Some(key) = key else { continue };
                let earlier = batch_contacts.get(&key).copied();
                if taken.contains(&key) || self.seen_contacts.contains(&key) || earlier.is_some() {
                    outcome.errors.push(RowError::new(
                        v.line,
                        Some(column),
                        match earlier {
                            Some(line) => format!("line {line} has the same {column}"),
                            None => format!("a member of the program has this {column}"),
                        },
                    ));
                    refused = true;
                }
            }
            if refused {
                continue;
            }
            for key in [
                v.new.email.as_ref().map(|e| format!("e:{e}")),
                v.new.phone.as_ref().map(|p| format!("p:{p}")),
            ]
            .into_iter()
            .flatten()
            {
                batch_contacts.insert(key, v.line);
            }
            fresh.push(v);
        }
        if self.dry_run {
            for v in &fresh {
                self.seen_ids
                    .insert(v.new.external_id.clone().unwrap_or_default());
                self.seen_contacts.extend(
                    [
                        v.new.email.as_ref().map(|e| format!("e:{e}")),
                        v.new.phone.as_ref().map(|p| format!("p:{p}")),
                    ]
                    .into_iter()
                    .flatten(),
                );
            }
        }
        Ok(fresh)
    }

    /// Inserts the members with fresh codes; returns the rows a unique index refused (a
    /// concurrent join, or a card number or referral code drawn twice).
    fn insert(&self, conn: &mut PgConnection, rows: &[&Valid]) -> QueryResult<Vec<(Uuid, usize)>> {
        let n = rows.len();
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let mut names = Vec::with_capacity(n);
        let mut emails = Vec::with_capacity(n);
        let mut phones = Vec::with_capacity(n);
        let mut externals = Vec::with_capacity(n);
        let mut cards = Vec::with_capacity(n);
        let mut codes = Vec::with_capacity(n);
        let mut points = Vec::with_capacity(n);
        let mut tiers = Vec::with_capacity(n);
        let (mut months, mut days, mut years) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut joined = Vec::with_capacity(n);
        for v in rows {
            names.push(v.new.name.clone());
            emails.push(v.new.email.clone());
            phones.push(v.new.phone.clone());
            externals.push(v.new.external_id.clone());
            cards.push(CardNumber::generate().as_str().to_string());
            codes.push(tokens::referral_code());
            points.push(v.points);
            tiers.push(v.tier.clone());
            let parts = v.new.birth_date.map(|b| b.parts());
            months.push(parts.map(|p| p.0));
            days.push(parts.map(|p| p.1));
            years.push(parts.and_then(|p| p.2));
            joined.push(v.joined.unwrap_or(self.now));
        }
        let review = self
            .rules
            .lifecycle
            .tier_window_days
            .map(|d| self.now + chrono::Duration::days(d));
        let inserted: HashSet<Uuid> = diesel::sql_query(
            "INSERT INTO members (id, merchant_id, program_id, name, email, phone, external_id,
                                  card_number, points, lifetime_points, tier, referral_code,
                                  birth_month, birth_day, birth_year, created_at, updated_at,
                                  tier_review_at)
             SELECT u.id, $1, $2, u.name, u.email, u.phone, u.external_id, u.card, u.points,
                    u.points, u.tier, u.code, u.bm, u.bd, u.by, u.joined, $15, $16
               FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                           $8::text[], $9::int8[], $10::text[], $11::text[], $12::int2[],
                           $13::int2[], $14::int2[], $17::timestamptz[])
                    AS u (id, name, email, phone, external_id, card, points, tier, code, bm, bd,
                          by, joined)
             ON CONFLICT DO NOTHING
             RETURNING id",
        )
        .bind::<SqlUuid, _>(self.tenant.merchant_id())
        .bind::<SqlUuid, _>(self.program.id)
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Text>, _>(&names)
        .bind::<Array<Nullable<Text>>, _>(&emails)
        .bind::<Array<Nullable<Text>>, _>(&phones)
        .bind::<Array<Nullable<Text>>, _>(&externals)
        .bind::<Array<Text>, _>(&cards)
        .bind::<Array<BigInt>, _>(&points)
        .bind::<Array<Nullable<Text>>, _>(&tiers)
        .bind::<Array<Text>, _>(&codes)
        .bind::<Array<Nullable<Int2>>, _>(&months)
        .bind::<Array<Nullable<Int2>>, _>(&days)
        .bind::<Array<Nullable<Int2>>, _>(&years)
        .bind::<Timestamptz, _>(self.now)
        .bind::<Nullable<Timestamptz>, _>(review)
        .bind::<Array<Timestamptz>, _>(&joined)
        .load::<Inserted>(conn)?
        .into_iter()
        .map(|r| r.id)
        .collect();
        Ok(ids
            .into_iter()
            .enumerate()
            .filter(|(_, id)| inserted.contains(id))
            .map(|(i, id)| (id, i))
            .collect())
    }

    /// The imported balances as `import` activities and lots, and the new members' passes.
    fn finish(&self, conn: &mut PgConnection, new: &[(Uuid, &Valid)]) -> QueryResult<()> {
        let merchant = self.tenant.merchant_id();
        let with_points: Vec<&(Uuid, &Valid)> = new.iter().filter(|(_, v)| v.points > 0).collect();
        if !with_points.is_empty() {
            let members: Vec<Uuid> = with_points.iter().map(|(id, _)| *id).collect();
            let activities: Vec<Uuid> = members.iter().map(|_| Uuid::new_v4()).collect();
            let points: Vec<i64> = with_points.iter().map(|(_, v)| v.points).collect();
            let tiers: Vec<Option<String>> =
                with_points.iter().map(|(_, v)| v.tier.clone()).collect();
            let expires = self
                .rules
                .lifecycle
                .expiry_of(PointActivityType::Import, self.now);
            diesel::sql_query(
                "WITH a AS (
                     INSERT INTO point_activities (id, merchant_id, member_id, type, delta,
                                                   points_after, reason, tier_after,
                                                   created_at, qualifying)
                     SELECT u.activity, $1, u.member, 'import', u.points, u.points,
                            'imported balance', u.tier, $5, u.points
                       FROM unnest($2::uuid[], $3::uuid[], $4::int8[], $6::text[])
                            AS u (member, activity, points, tier)
                     RETURNING 1)
                 INSERT INTO point_lots (merchant_id, member_id, activity_id, earned_at,
                                         expires_at, points, remaining)
                 SELECT $1, u.member, u.activity, $5, $7, u.points, u.points
                   FROM unnest($2::uuid[], $3::uuid[], $4::int8[]) AS u (member, activity, points)",
            )
            .bind::<SqlUuid, _>(merchant)
            .bind::<Array<SqlUuid>, _>(&members)
            .bind::<Array<SqlUuid>, _>(&activities)
            .bind::<Array<BigInt>, _>(&points)
            .bind::<Timestamptz, _>(self.now)
            .bind::<Array<Nullable<Text>>, _>(&tiers)
            .bind::<Nullable<Timestamptz>, _>(expires)
            .execute(conn)?;
        }
        let n = new.len();
        let pass_ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let members: Vec<Uuid> = new.iter().map(|(id, _)| *id).collect();
        let serials: Vec<String> = (0..n).map(|_| tokens::serial_number()).collect();
        let auth: Vec<String> = (0..n).map(|_| tokens::secret(32)).collect();
        let download: Vec<String> = (0..n).map(|_| tokens::secret(32)).collect();
        diesel::sql_query(
            "INSERT INTO passes (id, merchant_id, serial_number, member_id, template_id,
                                 authentication_token, download_token)
             SELECT u.id, $1, u.serial, u.member, $2, u.auth, u.download
               FROM unnest($3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[])
                    AS u (id, serial, member, auth, download)",
        )
        .bind::<SqlUuid, _>(merchant)
        .bind::<Text, _>(&self.program.template_id)
        .bind::<Array<SqlUuid>, _>(&pass_ids)
        .bind::<Array<Text>, _>(&serials)
        .bind::<Array<SqlUuid>, _>(&members)
        .bind::<Array<Text>, _>(&auth)
        .bind::<Array<Text>, _>(&download)
        .execute(conn)?;
        // As `pass_events::pass_created` does for one: Google Wallet gets its objects.
        crate::pass_events::passes_created(conn, &pass_ids, self.channels)?;
        Ok(())
    }
}

impl Writer for Members {
    fn batch(&mut self, conn: &mut PgConnection, rows: Vec<Row>) -> QueryResult<Outcome> {
        let mut outcome = Outcome::default();
        let mut valid = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.check(row) {
                Ok(v) => valid.push(v),
                Err(e) => outcome.errors.extend(e),
            }
        }
        let mut pending = self.sort(conn, valid, &mut outcome)?;
        if self.dry_run {
            return Ok(outcome);
        }
        // A row a unique index refused is sorted again (a concurrent join took its
        // external id or contact) or retried with new codes.
        for attempt in 0.. {
            if pending.is_empty() {
                break;
            }
            let refs: Vec<&Valid> = pending.iter().collect();
            let inserted = conn.transaction(|conn| self.insert(conn, &refs))?;
            let done: Vec<(Uuid, &Valid)> =
                inserted.iter().map(|(id, i)| (*id, refs[*i])).collect();
            self.finish(conn, &done)?;
            outcome.imported += done.len() as i64;
            let done_rows: HashSet<usize> = inserted.iter().map(|(_, i)| *i).collect();
            let left: Vec<Valid> = pending
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !done_rows.contains(i))
                .map(|(_, v)| v)
                .collect();
            if left.is_empty() || attempt >= 4 {
                for v in &left {
                    outcome.errors.push(RowError::new(
                        v.line,
                        None,
                        "could not be stored; import it again",
                    ));
                }
                break;
            }
            pending = self.sort(conn, left, &mut outcome)?;
        }
        Ok(outcome)
    }
}
