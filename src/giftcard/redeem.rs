use super::activity::{Activity, NewActivity};
use super::{check_amount, require_usable, Movement};
use crate::db::Tenant;
use crate::domain::CardNumber;
use crate::models::GiftCard;
use crate::outbox::{self, Card};
use crate::problem::{ApiError, ProblemKind};
use crate::schema::gift_cards;
use diesel::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// Minor units to take.
    pub amount: i64,
    pub currency: String,
    /// Take what the card has when it holds less than `amount` (the answer says how much).
    #[serde(default)]
    pub allow_partial: bool,
}

/// Takes money from a card. The balance is decremented by a conditional UPDATE, so two
/// tills can never both spend the last of it.
pub fn redeem(
    conn: &mut PgConnection,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Redeem,
) -> Result<Movement, ApiError> {
    let card = GiftCard::by_gan(conn, tenant, gan)?;
    check_amount(req.amount, &req.currency, &card)?;
    require_usable(&card)?;
    let updated: Option<i64> = diesel::update(gift_cards::table.find(card.id))
        .filter(gift_cards::state.eq("active"))
        .filter(gift_cards::balance.ge(req.amount))
        .set((
            gift_cards::balance.eq(gift_cards::balance - req.amount),
            gift_cards::updated_at.eq(diesel::dsl::now),
        ))
        .returning(gift_cards::balance)
        .get_result(conn)
        .optional()?;
    let (taken, balance) = match updated {
        Some(balance) => (req.amount, balance),
        None => {
            // Not enough, or no longer active: look under the row lock to say which.
            let (state, balance): (String, i64) = gift_cards::table
                .find(card.id)
                .select((gift_cards::state, gift_cards::balance))
                .for_update()
                .first(conn)?;
            match state.as_str() {
                "deactivated" => {
                    return Err(ApiError::new(
                        ProblemKind::CardInactive,
                        "the card is deactivated; it can only be read",
                    ))
                }
                "pending" => {
                    return Err(ApiError::new(
                        ProblemKind::CardInactive,
                        "the card is not activated yet: load it first",
                    ))
                }
                _ => {}
            }
            if !req.allow_partial || balance == 0 {
                return Err(ApiError::new(
                    ProblemKind::InsufficientFunds,
                    format!("the card holds {balance}, less than {}", req.amount),
                )
                .with_extra("balance", balance.into()));
            }
            diesel::update(gift_cards::table.find(card.id))
                .set((
                    gift_cards::balance.eq(0),
                    gift_cards::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
            (balance, 0)
        }
    };
    let activity_id = Activity::append(
        conn,
        NewActivity {
            merchant_id: tenant.merchant_id(),
            gift_card_id: card.id,
            kind: "redeem",
            amount: -taken,
            balance_after: balance,
            refunds: None,
            reason: None,
        },
    )?;
    let pass_id = outbox::pass_changed(conn, Card::GiftCard(card.id), "redeem")?;
    Ok(Movement {
        activity_id,
        amount: taken,
        balance,
        currency: card.currency.trim().to_string(),
        state: "active".into(),
        pass_id,
    })
}
