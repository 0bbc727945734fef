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
