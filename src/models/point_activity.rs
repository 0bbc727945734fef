//! A member's points ledger as the console reads it: newest first, a page at a time.

use crate::db::Tenant;
use crate::domain::PointActivityType;
use crate::schema::point_activities;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = point_activities)]
pub struct PointActivity {
    pub id: Uuid,
    #[diesel(column_name = type_)]
    pub kind: PointActivityType,
    pub delta: i64,
    pub points_after: i64,
    pub reason: Option<String>,
    pub purchase_amount: Option<i64>,
    pub purchase_currency: Option<String>,
    pub tier_after: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Commit order within the ledger: what a page's cursor holds.
    pub seq: i64,
}

impl PointActivity {
    /// Up to `limit` rows of the member's ledger older than `before` (by `seq`), newest first.
    pub fn page_of_member(
        conn: &mut PgConnection,
        tenant: &Tenant,
        member_id: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<PointActivity>> {
        let mut query = point_activities::table
            .filter(point_activities::merchant_id.eq(tenant.merchant_id()))
            .filter(point_activities::member_id.eq(member_id))
            .order(point_activities::seq.desc())
            .limit(limit)
            .select(PointActivity::as_select())
            .into_boxed();
        if let Some(seq) = before {
            query = query.filter(point_activities::seq.lt(seq));
        }
        query.load(conn)
    }
}

/// An entry of a program's points ledger, as its activity list and export show it.
#[derive(Debug, Clone, QueryableByName, serde::Serialize, utoipa::ToSchema)]
pub struct ProgramActivity {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub member_id: Uuid,
    /// The member's card number, as their pass's barcode carries it.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub card_number: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: PointActivityType,
    /// Points moved: positive gained, negative spent, expired or taken back.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub points: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub points_after: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub reason: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub purchase_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub purchase_amount: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub tier_after: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Commit order within the ledger: what a page's cursor holds.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[serde(skip)]
    pub seq: i64,
}

/// What an activity list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    /// Only activities at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only these types (their names); empty: every type.
    pub types: Vec<String>,
}

impl ProgramActivity {
    /// Up to `limit` entries of the program's ledger after `after` (by `seq`), oldest first.
    pub fn page_of_program(
        conn: &mut PgConnection,
        tenant: &Tenant,
        program_id: Uuid,
        filter: &ActivityFilter,
        after: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<ProgramActivity>> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
        diesel::sql_query(
            "SELECT a.id, a.member_id, m.card_number, a.type AS kind, a.delta AS points, a.points_after,
                    a.reason, a.purchase_id, a.purchase_amount, a.tier_after, a.created_at, a.seq
               FROM point_activities a JOIN members m ON m.id = a.member_id
              WHERE a.merchant_id = $1 AND m.merchant_id = $1 AND m.program_id = $2
                AND ($3::timestamptz IS NULL OR a.created_at >= $3)
                AND (cardinality($4::text[]) = 0 OR a.type = ANY ($4))
                AND ($5::bigint IS NULL OR a.seq > $5)
              ORDER BY a.seq LIMIT $6",
        )
        .bind::<SqlUuid, _>(tenant.merchant_id())
        .bind::<SqlUuid, _>(program_id)
        .bind::<Nullable<Timestamptz>, _>(filter.since)
        .bind::<Array<Text>, _>(&filter.types)
        .bind::<Nullable<BigInt>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
    }
}
