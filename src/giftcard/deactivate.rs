use super::activity::{Activity, NewActivity};
use crate::db::Tenant;
use crate::domain::{CardNumber, CardState, GiftCardActivityType};
use crate::models::GiftCard;
use crate::pass_events::Channels;
use crate::problem::ApiError;
use crate::schema::gift_cards;
use diesel::prelude::*;
use uuid::Uuid;

/// Deactivates a card for good: it keeps its balance on record but refuses every movement,
/// and its pass is voided. Deactivating twice changes nothing.
pub fn deactivate(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
) -> Result<(GiftCard, Option<Uuid>), ApiError> {
    let card = GiftCard::by_gan(conn, tenant, gan)?;
    super::lock(conn, &card)?;
    let changed: Option<i64> = diesel::update(gift_cards::table.find(card.id))
        .filter(gift_cards::state.ne(CardState::Deactivated))
        .set((
            gift_cards::state.eq(CardState::Deactivated),
            gift_cards::updated_at.eq(diesel::dsl::now),
        ))
        .returning(gift_cards::balance)
        .get_result(conn)
        .optional()?;
    let pass_id = match changed {
        Some(balance) => {
            let (_, pass_id) = Activity::record(
                conn,
                NewActivity {
                    channels,
                    merchant_id: tenant.merchant_id(),
                    gift_card_id: card.id,
                    kind: GiftCardActivityType::Deactivate,
                    amount: 0,
                    balance_after: balance,
                    refunds: None,
                    reason: None,
                },
            )?;
            Some(pass_id)
        }
        None => None,
    };
    Ok((GiftCard::find(conn, tenant, card.id)?, pass_id))
}
