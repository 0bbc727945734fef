use crate::db::Tenant;
use crate::domain::{CardNumber, CardState, Currency, GiftCardActivityType, Pin};
use crate::models::pass::{Holder, Pass};
use crate::schema::{gift_card_activities, gift_cards};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = gift_cards)]
pub struct GiftCard {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub template_id: String,
    pub gan: String,
    pub pin_hash: String,
    pub currency: Currency,
    pub balance: i64,
    pub state: CardState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl GiftCard {
    /// Issues a card: `active` with an `activate` activity when it starts with a balance,
    /// `pending` (activated by its first load) when it starts empty. Card, activity and pass
    /// in one transaction; the PIN is returned once.
    pub fn issue(
        conn: &mut PgConnection,
        tenant: &Tenant,
        template_id: &str,
        currency: Currency,
        initial_balance: i64,
    ) -> QueryResult<(GiftCard, Pin, Pass)> {
        let pin = Pin::generate();
        let pin_hash = pin.hash();
        conn.transaction(|conn| {
            let state = if initial_balance > 0 {
                CardState::Active
            } else {
                CardState::Pending
            };
            let mut attempt = 0;
            let card = loop {
                attempt += 1;
                let result = conn.transaction(|conn| {
                    diesel::insert_into(gift_cards::table)
                        .values((
                            gift_cards::id.eq(Uuid::new_v4()),
                            gift_cards::merchant_id.eq(tenant.merchant_id()),
                            gift_cards::template_id.eq(template_id),
                            gift_cards::gan.eq(CardNumber::generate().as_str()),
                            gift_cards::pin_hash.eq(&pin_hash),
                            gift_cards::currency.eq(currency),
                            gift_cards::balance.eq(initial_balance),
                            gift_cards::state.eq(state),
                        ))
                        .returning(GiftCard::as_returning())
                        .get_result(conn)
                });
                match result {
                    Ok(card) => break card,
                    // A GAN collision: draw another.
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) if attempt < 5 => {}
                    Err(e) => return Err(e),
                }
            };
            if initial_balance > 0 {
                diesel::insert_into(gift_card_activities::table)
                    .values((
                        gift_card_activities::id.eq(Uuid::new_v4()),
                        gift_card_activities::merchant_id.eq(tenant.merchant_id()),
                        gift_card_activities::gift_card_id.eq(card.id),
                        gift_card_activities::type_.eq(GiftCardActivityType::Activate),
                        gift_card_activities::amount.eq(initial_balance),
                        gift_card_activities::balance_after.eq(initial_balance),
                    ))
                    .execute(conn)?;
            }
            let pass = Pass::create(
                conn,
                tenant.merchant_id(),
                template_id,
                Holder::GiftCard(card.id),
            )?;
            crate::outbox::pass_created(conn, crate::outbox::Card::GiftCard(card.id))?;
            Ok((card, pin, pass))
        })
    }

    pub fn by_gan(
        conn: &mut PgConnection,
        tenant: &Tenant,
        gan: &CardNumber,
    ) -> QueryResult<GiftCard> {
        gift_cards::table
            .filter(gift_cards::merchant_id.eq(tenant.merchant_id()))
            .filter(gift_cards::gan.eq(gan.as_str()))
            .select(GiftCard::as_select())
            .first(conn)
    }

    pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<GiftCard> {
        gift_cards::table
            .filter(gift_cards::merchant_id.eq(tenant.merchant_id()))
            .filter(gift_cards::id.eq(id))
            .select(GiftCard::as_select())
            .first(conn)
    }
}

impl GiftCard {
    /// The card with this GAN, whoever issued it: for the public balance check, where the
    /// GAN and PIN are the credentials.
    pub fn by_gan_any_merchant(
        conn: &mut PgConnection,
        gan: &CardNumber,
    ) -> QueryResult<Option<GiftCard>> {
        gift_cards::table
            .filter(gift_cards::gan.eq(gan.as_str()))
            .select(GiftCard::as_select())
            .first(conn)
            .optional()
    }
}
