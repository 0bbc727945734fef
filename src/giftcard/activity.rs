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
    pub kind: String,
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
    pub kind: &'a str,
    pub amount: i64,
    pub balance_after: i64,
    pub refunds: Option<Uuid>,
    pub reason: Option<&'a str>,
}

impl Activity {
    pub fn append(conn: &mut PgConnection, new: NewActivity<'_>) -> QueryResult<Uuid> {
        let id = Uuid::new_v4();
        diesel::insert_into(gift_card_activities::table)
            .values((
                gift_card_activities::id.eq(id),
                gift_card_activities::merchant_id.eq(new.merchant_id),
                gift_card_activities::gift_card_id.eq(new.gift_card_id),
                gift_card_activities::type_.eq(new.kind),
                gift_card_activities::amount.eq(new.amount),
                gift_card_activities::balance_after.eq(new.balance_after),
                gift_card_activities::refunds_activity_id.eq(new.refunds),
                gift_card_activities::reason.eq(new.reason),
            ))
            .execute(conn)?;
        Ok(id)
    }

    pub fn of_card(conn: &mut PgConnection, gift_card_id: Uuid) -> QueryResult<Vec<Activity>> {
        gift_card_activities::table
            .filter(gift_card_activities::gift_card_id.eq(gift_card_id))
            .order(gift_card_activities::seq.asc())
            .select(Activity::as_select())
            .load(conn)
    }
}
