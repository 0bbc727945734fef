use crate::db::Tenant;
use crate::domain::{BirthDate, CardNumber, PageCursor, SearchTerm};
use crate::schema::members;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::DatabaseErrorInformation;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = members)]
pub struct Member {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub program_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub card_number: String,
    pub points: i64,
    pub lifetime_points: i64,
    pub tier: Option<String>,
    pub referral_code: String,
    pub referred_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Points a return should have taken but were spent: taken from the next gains.
    pub points_owed: i64,
    pub birth_month: Option<i16>,
    pub birth_day: Option<i16>,
    pub birth_year: Option<i16>,
    /// When the member's personal data was erased (`privacy::erasure`); their ledger stays.
    pub erased_at: Option<DateTime<Utc>>,
}

/// A new member's details, already checked by the caller.
pub struct NewMember {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub referred_by: Option<Uuid>,
    pub birth_date: Option<BirthDate>,
}

impl Member {
    /// Inserts a member of `program_id` holding `points` (lifetime points alike) and `tier`.
    pub fn insert(
        conn: &mut PgConnection,
        tenant: &Tenant,
        program_id: Uuid,
        new: &NewMember,
        (card_number, referral_code): (&CardNumber, &str),
        points: i64,
        tier: Option<&str>,
    ) -> QueryResult<Member> {
        let birth = new.birth_date.map(|b| b.parts());
        diesel::insert_into(members::table)
            .values((
                members::id.eq(Uuid::new_v4()),
                members::merchant_id.eq(tenant.merchant_id()),
                members::program_id.eq(program_id),
                members::name.eq(&new.name),
                members::email.eq(&new.email),
                members::phone.eq(&new.phone),
                members::external_id.eq(&new.external_id),
                members::card_number.eq(card_number.as_str()),
                members::points.eq(points),
                members::lifetime_points.eq(points),
                members::tier.eq(tier),
                members::referral_code.eq(referral_code),
                members::referred_by.eq(new.referred_by),
                members::birth_month.eq(birth.map(|b| b.0)),
                members::birth_day.eq(birth.map(|b| b.1)),
                members::birth_year.eq(birth.and_then(|b| b.2)),
            ))
            .returning(Member::as_returning())
            .get_result(conn)
    }

    /// Which of a person's details a unique violation on `members` names (a program has
    /// one member per email, phone and external id); None for the generated codes.
    pub fn duplicate_detail(info: &dyn DatabaseErrorInformation) -> Option<&'static str> {
        match info.constraint_name()? {
            "members_program_email_idx" => Some("email"),
            "members_program_phone_idx" => Some("phone"),
            "members_program_external_idx" => Some("external_id"),
            _ => None,
        }
    }

    pub fn birth_date(&self) -> Option<BirthDate> {
        BirthDate::from_parts(self.birth_month, self.birth_day, self.birth_year)
    }

    /// Sets (or with `None` forgets) the member's birth date; false when there is no such
    /// member.
    pub fn set_birth_date(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        date: Option<BirthDate>,
    ) -> QueryResult<bool> {
        let parts = date.map(|d| d.parts());
        diesel::update(members::table)
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::id.eq(id))
            .set((
                members::birth_month.eq(parts.map(|p| p.0)),
                members::birth_day.eq(parts.map(|p| p.1)),
                members::birth_year.eq(parts.and_then(|p| p.2)),
                members::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .map(|n| n > 0)
    }

    pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<Member> {
        members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::id.eq(id))
            .select(Member::as_select())
            .first(conn)
    }

    pub fn by_card_number(
        conn: &mut PgConnection,
        tenant: &Tenant,
        number: &CardNumber,
    ) -> QueryResult<Vec<Member>> {
        members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::card_number.eq(number.as_str()))
            .filter(members::erased_at.is_null())
            .select(Member::as_select())
            .load(conn)
    }
}

impl Member {
    /// The member whose referral link was opened: codes are unique across merchants, and
    /// the link is public.
    pub fn by_public_referral_code(
        conn: &mut PgConnection,
        code: &str,
    ) -> QueryResult<Option<Member>> {
        members::table
            .filter(members::referral_code.eq(code))
            .filter(members::erased_at.is_null())
            .select(Member::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_referral_code(
        conn: &mut PgConnection,
        tenant: &Tenant,
        program_id: Uuid,
        code: &str,
    ) -> QueryResult<Option<Member>> {
        members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::program_id.eq(program_id))
            .filter(members::referral_code.eq(code))
            .filter(members::erased_at.is_null())
            .select(Member::as_select())
            .first(conn)
            .optional()
    }
}

/// A member search: the merchant's members (of one program, when given) that the term finds.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub program_id: Option<Uuid>,
    pub term: SearchTerm,
    /// Only the members of an RFM group or cell, or at a lifecycle stage.
    pub segment: Option<crate::segments::Filter>,
    /// Tier and times; with no text, `updated_since` or `created_since` also set the order.
    pub narrow: Narrowing,
}

/// Conditions of a member list beyond the text and the segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    pub tier: Option<String>,
    pub created_since: Option<DateTime<Utc>>,
    pub updated_since: Option<DateTime<Utc>>,
}

/// What a member list is ordered by (then by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOrder {
    /// The text each member was found by (folded name for a plain list).
    Key,
    /// `updated_at`: for syncing the changes since a time.
    Updated,
    /// `created_at`: for taking the members who joined since a time.
    Created,
}

impl SearchQuery {
    /// A text search is ordered by what matched; a plain list with `updated_since` by
    /// change, with `created_since` by joining, else by name.
    pub fn order(&self) -> MemberOrder {
        match (&self.term, &self.narrow) {
            (SearchTerm::Everyone, n) if n.updated_since.is_some() => MemberOrder::Updated,
            (SearchTerm::Everyone, n) if n.created_since.is_some() => MemberOrder::Created,
            _ => MemberOrder::Key,
        }
    }
}

/// A member found, with the key it is ordered by (what a page's cursor holds).
#[derive(QueryableByName)]
pub struct Found {
    #[diesel(embed)]
    pub member: Member,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub sort_key: String,
}

/// One way of matching: the key its matches are ordered by and the condition they meet,
/// each served by one index (migration 000031). `{t}` is the term's placeholder, `{e}` the
/// term escaped for LIKE.
struct Branch {
    key: &'static str,
    matches: &'static str,
    /// The key is an instant (a cursor's text is cast, the answer's key is RFC 3339).
    time: bool,
}

/// Name substring: the trigram index narrows, the LIKE decides; ordered by folded name (a
/// bitmap of the matches, then a top-N sort).
const NAME_CONTAINS: Branch = Branch {
    key: "m.search_name",
    matches: "passfold_trigrams(m.search_name) @> passfold_trigrams(passfold_fold({t})) \
              AND m.search_name LIKE '%' || passfold_fold({e}) || '%'",
    time: false,
};
/// The LIKE alone, to leave name matches out of a later branch (cheap per row).
const NAME_CONTAINS_TEST: &str = "m.search_name LIKE '%' || passfold_fold({e}) || '%'";
const NAME_PREFIX: Branch = Branch {
    key: "m.search_name",
    matches: "m.search_name LIKE passfold_fold({e}) || '%'",
    time: false,
};
const EMAIL_PREFIX: Branch = Branch {
    key: "passfold_fold(m.email) COLLATE \"C\"",
    matches: "passfold_fold(m.email) COLLATE \"C\" LIKE passfold_fold({e}) || '%'",
    time: false,
};
const PHONE_PREFIX: Branch = Branch {
    key: "passfold_digits(m.phone) COLLATE \"C\"",
    matches: "passfold_digits(m.phone) COLLATE \"C\" LIKE {e} || '%'",
    time: false,
};
const CARD_PREFIX: Branch = Branch {
    key: "m.card_number COLLATE \"C\"",
    matches: "m.card_number COLLATE \"C\" LIKE {e} || '%'",
    time: false,
};
const EVERYONE: Branch = Branch {
    key: "m.search_name",
    matches: "TRUE",
    time: false,
};
/// Every member, by last change or by joining.
const BY_UPDATE: Branch = Branch {
    key: "m.updated_at",
    matches: "TRUE",
    time: true,
};
const BY_CREATION: Branch = Branch {
    key: "m.created_at",
    matches: "TRUE",
    time: true,
};

/// `text` as a LIKE pattern matching itself (LIKE's default escape is the backslash).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Member {
    /// One page of a member search, ordered by the key each member matched on (folded
    /// name, email, phone digits or card number), then id; `after` continues from the end
    /// of the previous page. Each member appears once: a later branch leaves out the
    /// members an earlier one found. Every branch is one index's range or bitmap, and the
    /// union of their ordered, limited results is merged, so a search reads about `limit`
    /// rows per branch (the name-substring branch excepted: it sorts all its matches).
    ///
    /// Sent as its own statement (diesel does not cache `sql_query`), so PostgreSQL plans it
    /// with the actual patterns: a prepared plan for an unknown pattern could not use the
    /// prefix ranges.
    pub fn search(
        conn: &mut PgConnection,
        tenant: &Tenant,
        query: &SearchQuery,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> QueryResult<Vec<Found>> {
        // A time-ordered list's cursor holds an instant (the route refuses others first).
        if query.order() != MemberOrder::Key
            && after.is_some_and(|c| c.typed::<DateTime<Utc>>().is_err())
        {
            return Ok(Vec::new());
        }
        search_statement("", tenant, query, after, limit).load(conn)
    }

    /// PostgreSQL's plan for [`Member::search`] with these values, one line per row
    /// (`EXPLAIN` options such as `ANALYZE` in `options`): how benchmarks show index use.
    pub fn explain_search(
        conn: &mut PgConnection,
        tenant: &Tenant,
        query: &SearchQuery,
        after: Option<&PageCursor>,
        limit: i64,
        options: &str,
    ) -> QueryResult<Vec<String>> {
        #[derive(QueryableByName)]
        struct Line {
            #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
            line: String,
        }
        let explain = format!("EXPLAIN ({options}) ");
        let lines: Vec<Line> =
            search_statement(&explain, tenant, query, after, limit).load(conn)?;
        Ok(lines.into_iter().map(|l| l.line).collect())
    }
}

/// The search's statement, after `prefix` (empty, or an EXPLAIN).
fn search_statement(
    prefix: &str,
    tenant: &Tenant,
    query: &SearchQuery,
    after: Option<&PageCursor>,
    limit: i64,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery>
{
    use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
    let (branches, excluded, term): (Vec<Branch>, Option<&str>, &str) = match &query.term {
        SearchTerm::Everyone => match query.order() {
            MemberOrder::Updated => (vec![BY_UPDATE], None, ""),
            MemberOrder::Created => (vec![BY_CREATION], None, ""),
            MemberOrder::Key => (vec![EVERYONE], None, ""),
        },
        SearchTerm::Text(t) => (
            vec![NAME_CONTAINS, EMAIL_PREFIX],
            Some(NAME_CONTAINS_TEST),
            t,
        ),
        SearchTerm::ShortText(t) => (
            vec![NAME_PREFIX, EMAIL_PREFIX],
            Some(NAME_PREFIX.matches),
            t,
        ),
        SearchTerm::Email(t) => (vec![EMAIL_PREFIX], None, t),
        SearchTerm::Digits(d) => (
            vec![PHONE_PREFIX, CARD_PREFIX],
            Some("coalesce(passfold_digits(m.phone) LIKE {e} || '%', FALSE)"),
            d,
        ),
    };
    // $1 merchant, $2 term, $3 escaped term, $4 limit, then program, then cursor.
    let mut next = 5;
    let mut placeholder = || {
        let p = format!("${next}");
        next += 1;
        p
    };
    let program = query.program_id.map(|_| placeholder());
    let segment = query.segment.as_ref().map(|f| f.sql(&placeholder()));
    let narrow = &query.narrow;
    let tier = narrow.tier.as_ref().map(|_| placeholder());
    let created = narrow.created_since.map(|_| placeholder());
    let updated = narrow.updated_since.map(|_| placeholder());
    let cursor = after.map(|_| (placeholder(), placeholder()));
    let fill = |s: &str| s.replace("{t}", "$2").replace("{e}", "$3");
    let selects: Vec<String> = branches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let text_key = if b.time {
                    format!("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", b.key)
                } else {
                    b.key.to_string()
                };
                let mut sql = format!(
                    "(SELECT m.*, {text_key} AS sort_key FROM members m WHERE m.merchant_id = $1 AND m.erased_at IS NULL AND {matches}",
                    matches = fill(b.matches),
                );
                if i > 0 {
                    if let Some(earlier) = excluded {
                        sql.push_str(&format!(" AND NOT ({})", fill(earlier)));
                    }
                }
                if let Some(p) = &program {
                    sql.push_str(&format!(" AND m.program_id = {p}"));
                }
                if let Some((condition, _)) = &segment {
                    sql.push_str(&format!(" AND {condition}"));
                }
                for (column, p) in [("m.tier", &tier), ("m.created_at", &created), ("m.updated_at", &updated)] {
                    if let Some(p) = p {
                        let op = if column == "m.tier" { "=" } else { ">=" };
                        sql.push_str(&format!(" AND {column} {op} {p}"));
                    }
                }
                if let Some((key, id)) = &cursor {
                    let cast = if b.time { "" } else { " COLLATE \"C\"" };
                    sql.push_str(&format!(
                        " AND ({k}, m.id) > ({key}{cast}, {id})",
                        k = b.key
                    ));
                }
                sql.push_str(&format!(" ORDER BY {k}, m.id LIMIT $4)", k = b.key));
                sql
            })
            .collect();
    let sql = format!(
        "{prefix}SELECT * FROM ({}) found ORDER BY sort_key COLLATE \"C\", id LIMIT $4",
        selects.join(" UNION ALL ")
    );
    let mut q = diesel::sql_query(sql)
        .into_boxed::<diesel::pg::Pg>()
        .bind::<SqlUuid, _>(tenant.merchant_id())
        .bind::<Text, _>(term.to_string())
        .bind::<Text, _>(like_escaped(term))
        .bind::<BigInt, _>(limit);
    if let Some(program_id) = query.program_id {
        q = q.bind::<SqlUuid, _>(program_id);
    }
    if let Some((_, value)) = segment {
        q = q.bind::<Text, _>(value);
    }
    if let Some(tier) = &narrow.tier {
        q = q.bind::<Text, _>(tier.clone());
    }
    for t in [narrow.created_since, narrow.updated_since]
        .into_iter()
        .flatten()
    {
        q = q.bind::<diesel::sql_types::Timestamptz, _>(t);
    }
    if let Some(after) = after {
        q = match after.typed::<DateTime<Utc>>() {
            Ok((at, _)) if query.order() != MemberOrder::Key => {
                q.bind::<diesel::sql_types::Timestamptz, _>(at)
            }
            _ => q.bind::<Text, _>(after.key.clone()),
        }
        .bind::<SqlUuid, _>(after.id);
    }
    q
}
