use crate::db::Tenant;
use crate::domain::{CardNumber, CardState, Currency};
use crate::schema::gift_cards;
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

pub struct NewGiftCard<'a> {
    pub template_id: &'a str,
    pub gan: &'a CardNumber,
    pub pin_hash: &'a str,
    pub currency: Currency,
    pub balance: i64,
    pub state: CardState,
}

impl GiftCard {
    /// Inserts a card; a GAN already taken is a unique violation (the caller draws again).
    pub fn insert(
        conn: &mut PgConnection,
        tenant: &Tenant,
        new: &NewGiftCard<'_>,
    ) -> QueryResult<GiftCard> {
        diesel::insert_into(gift_cards::table)
            .values((
                gift_cards::id.eq(Uuid::new_v4()),
                gift_cards::merchant_id.eq(tenant.merchant_id()),
                gift_cards::template_id.eq(new.template_id),
                gift_cards::gan.eq(new.gan.as_str()),
                gift_cards::pin_hash.eq(new.pin_hash),
                gift_cards::currency.eq(new.currency),
                gift_cards::balance.eq(new.balance),
                gift_cards::state.eq(new.state),
            ))
            .returning(GiftCard::as_returning())
            .get_result(conn)
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

/// What a gift-card list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct CardFilter {
    pub state: Option<CardState>,
    pub created_since: Option<DateTime<Utc>>,
    /// Also orders the list by `updated_at` (else by `created_at`), then id.
    pub updated_since: Option<DateTime<Utc>>,
}

impl CardFilter {
    /// The instant a card is ordered by.
    pub fn key_of(&self, card: &GiftCard) -> DateTime<Utc> {
        if self.updated_since.is_some() {
            card.updated_at
        } else {
            card.created_at
        }
    }
}

impl GiftCard {
    /// Up to `limit` of the merchant's cards after `after` (the last card's key and id).
    pub fn page(
        conn: &mut PgConnection,
        tenant: &Tenant,
        filter: &CardFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<GiftCard>> {
        let mut q = gift_cards::table
            .filter(gift_cards::merchant_id.eq(tenant.merchant_id()))
            .select(GiftCard::as_select())
            .limit(limit)
            .into_boxed();
        if let Some(state) = filter.state {
            q = q.filter(gift_cards::state.eq(state));
        }
        if let Some(t) = filter.created_since {
            q = q.filter(gift_cards::created_at.ge(t));
        }
        if let Some(t) = filter.updated_since {
            q = q.filter(gift_cards::updated_at.ge(t));
        }
        let by_update = filter.updated_since.is_some();
        if let Some((at, id)) = after {
            let columns = if by_update {
                "updated_at, id"
            } else {
                "created_at, id"
            };
            q = q.filter(super::after_instant(columns, at, id));
        }
        q = if by_update {
            q.order((gift_cards::updated_at, gift_cards::id))
        } else {
            q.order((gift_cards::created_at, gift_cards::id))
        };
        q.load(conn)
    }

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
