use crate::db::Tenant;
use crate::domain::GiftCardActivityType;
use crate::schema::gift_card_activities;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = gift_card_activities)]
pub struct Activity {
    pub id: Uuid,
    #[serde(skip)]
    pub merchant_id: Uuid,
    #[serde(skip)]
    pub gift_card_id: Uuid,
    #[diesel(column_name = type_)]
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: GiftCardActivityType,
    /// Signed change of the balance (negative for a redemption): the balance is the sum.
    pub amount: i64,
    pub balance_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunds_activity_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub struct NewActivity<'a> {
    pub merchant_id: Uuid,
    pub gift_card_id: Uuid,
    pub kind: GiftCardActivityType,
    pub amount: i64,
    pub balance_after: i64,
    pub refunds: Option<Uuid>,
    pub reason: Option<&'a str>,
    /// Where the pass's change is delivered.
    pub channels: crate::pass_events::Channels,
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pass_id: Uuid,
}

/// Appends the activity, gives the card's pass a new update tag and queues its push, in one
/// round trip (the SQL function is shared with the one-statement redemption).
const RECORD: &str =
    "SELECT passfold_record_activity($1, $2, $3, $4, $5, $6, $7, $8, $9) AS pass_id";

impl Activity {
    /// Records a movement: the activity, the pass's new version and its outbox row.
    /// Returns (activity id, pass id).
    pub fn record(conn: &mut PgConnection, new: NewActivity<'_>) -> QueryResult<(Uuid, Uuid)> {
        use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
        let id = Uuid::new_v4();
        let recorded: Recorded = diesel::sql_query(RECORD)
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(new.merchant_id)
            .bind::<SqlUuid, _>(new.gift_card_id)
            .bind::<Text, _>(new.kind)
            .bind::<BigInt, _>(new.amount)
            .bind::<BigInt, _>(new.balance_after)
            .bind::<Nullable<SqlUuid>, _>(new.refunds)
            .bind::<Nullable<Text>, _>(new.reason)
            .bind::<diesel::sql_types::Array<Text>, _>(new.channels.all())
            .get_result(conn)?;
        Ok((id, recorded.pass_id))
    }

    /// The `activate` entry of a card issued with a balance. Its pass does not exist yet:
    /// it is created (and announced) after this, so no new version is recorded.
    pub fn record_opening(
        conn: &mut PgConnection,
        tenant: &Tenant,
        gift_card_id: Uuid,
        amount: i64,
    ) -> QueryResult<()> {
        diesel::insert_into(gift_card_activities::table)
            .values((
                gift_card_activities::id.eq(Uuid::new_v4()),
                gift_card_activities::merchant_id.eq(tenant.merchant_id()),
                gift_card_activities::gift_card_id.eq(gift_card_id),
                gift_card_activities::type_.eq(GiftCardActivityType::Activate),
                gift_card_activities::amount.eq(amount),
                gift_card_activities::balance_after.eq(amount),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Up to `limit` of the card's activities after `after` (by `seq`), oldest first, each
    /// with its `seq` (what a page's cursor holds).
    pub fn page_of_card(
        conn: &mut PgConnection,
        gift_card_id: Uuid,
        after: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<(i64, Activity)>> {
        let mut query = gift_card_activities::table
            .filter(gift_card_activities::gift_card_id.eq(gift_card_id))
            .order(gift_card_activities::seq.asc())
            .limit(limit)
            .select((gift_card_activities::seq, Activity::as_select()))
            .into_boxed();
        if let Some(seq) = after {
            query = query.filter(gift_card_activities::seq.gt(seq));
        }
        query.load(conn)
    }

    pub fn of_card(conn: &mut PgConnection, gift_card_id: Uuid) -> QueryResult<Vec<Activity>> {
        gift_card_activities::table
            .filter(gift_card_activities::gift_card_id.eq(gift_card_id))
            .order(gift_card_activities::seq.asc())
            .select(Activity::as_select())
            .load(conn)
    }
}

/// An entry of the merchant's gift-card ledger, with its card's GAN: what the merchant-wide
/// activity list and its export show.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct CardActivity {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub gan: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: GiftCardActivityType,
    /// Signed change of the balance (negative for a redemption).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub amount: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub balance_after: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub refunds_activity_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub reason: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[serde(skip)]
    pub seq: i64,
}

impl CardActivity {
    /// Up to `limit` of the merchant's gift-card activities after `after` (by `seq`),
    /// oldest first.
    pub fn page_of_merchant(
        conn: &mut PgConnection,
        tenant: &Tenant,
        filter: &crate::models::point_activity::ActivityFilter,
        after: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<CardActivity>> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
        diesel::sql_query(
            "SELECT a.id, c.gan, a.type AS kind, a.amount, a.balance_after, a.refunds_activity_id,
                    a.reason, a.created_at, a.seq
               FROM gift_card_activities a JOIN gift_cards c ON c.id = a.gift_card_id
              WHERE a.merchant_id = $1 AND c.merchant_id = $1
                AND ($2::timestamptz IS NULL OR a.created_at >= $2)
                AND (cardinality($3::text[]) = 0 OR a.type = ANY ($3))
                AND ($4::bigint IS NULL OR a.seq > $4)
              ORDER BY a.seq LIMIT $5",
        )
        .bind::<SqlUuid, _>(tenant.merchant_id())
        .bind::<Nullable<Timestamptz>, _>(filter.since)
        .bind::<Array<Text>, _>(&filter.types)
        .bind::<Nullable<BigInt>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
    }
}
