//! Gift cards from the old system, each issued through `giftcard::issue::create` (the card,
//! its `activate` activity for the balance, its pass): the GAN given or a new one, the PIN
//! given or a new one (kept only as a hash, as for any card: a generated PIN is known to
//! nobody, and the card is used by its GAN at the till). A card `inactive` in the old
//! system is deactivated after its activation, keeping its balance on record. A GAN the
//! merchant has is skipped, never updated.

use super::{Outcome, Row, RowError, Writer};
use crate::db::Tenant;
use crate::domain::{CardNumber, Currency, Pin, TemplateKind};
use crate::models::Template;
use crate::pass_events::Channels;
use crate::schema::gift_cards;
use diesel::prelude::*;
use std::collections::HashSet;

pub const COLUMNS: &[&str] = &["gan", "balance", "currency", "pin", "state"];
pub const REQUIRED: &[&str] = &["balance", "currency"];

const GAN: usize = 0;
const BALANCE: usize = 1;
const CURRENCY: usize = 2;
const PIN: usize = 3;
const STATE: usize = 4;

pub struct GiftCards {
    tenant: Tenant,
    template: String,
    channels: Channels,
    dry_run: bool,
    max_balance: i64,
    /// GANs met earlier in the file (a dry run writes nothing to find them by).
    seen: HashSet<String>,
    /// The file's SHA-256: with a row's line, the key of a card the file gives no GAN.
    file: Option<String>,
    template_checked: Option<Result<(), String>>,
}

struct Valid {
    line: i64,
    gan: Option<CardNumber>,
    balance: i64,
    currency: Currency,
    pin: Option<Pin>,
    active: bool,
}

impl GiftCards {
    pub fn new(
        tenant: Tenant,
        template: String,
        channels: Channels,
        dry_run: bool,
        max_balance: i64,
        file: Option<String>,
    ) -> Self {
        GiftCards {
            tenant,
            template,
            channels,
            dry_run,
            max_balance,
            seen: HashSet::new(),
            file,
            template_checked: None,
        }
    }

    fn check(&self, row: &Row) -> Result<Valid, Vec<RowError>> {
        let line = row.line;
        let mut errors = Vec::new();
        let gan = match row.get(GAN).map(CardNumber::parse) {
            None => None,
            Some(Ok(g)) => Some(g),
            Some(Err(e)) => {
                errors.push(RowError::new(line, Some("gan"), e));
                None
            }
        };
        let balance = match row.get(BALANCE).map(str::parse::<i64>) {
            Some(Ok(b)) if (0..=self.max_balance).contains(&b) => b,
            None => {
                errors.push(RowError::new(line, Some("balance"), "required"));
                0
            }
            Some(_) => {
                errors.push(RowError::new(
                    line,
                    Some("balance"),
                    format!(
                        "minor units from 0 to the maximum balance of {}",
                        self.max_balance
                    ),
                ));
                0
            }
        };
        let currency = match row.get(CURRENCY).map(Currency::parse) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(RowError::new(line, Some("currency"), e));
                None
            }
            None => {
                errors.push(RowError::new(line, Some("currency"), "required"));
                None
            }
        };
        let pin = match row.get(PIN) {
            None => None,
            Some(text) => match Pin::parse(text) {
                Some(p) => Some(p),
                None => {
                    errors.push(RowError::new(line, Some("pin"), "8 digits"));
                    None
                }
            },
        };
        let active = match row.get(STATE).map(str::to_ascii_lowercase).as_deref() {
            None | Some("active") => true,
            Some("inactive") => false,
            Some(_) => {
                errors.push(RowError::new(line, Some("state"), "active or inactive"));
                true
            }
        };
        match currency {
            Some(currency) if errors.is_empty() => Ok(Valid {
                line,
                gan,
                balance,
                currency,
                pin,
                active,
            }),
            _ => Err(errors),
        }
    }

    /// The import key of the card on `line` when the file gives it no GAN.
    fn key(&self, line: i64) -> Option<String> {
        self.file.as_ref().map(|sha256| format!("{sha256}:{line}"))
    }

    fn template_ok(&mut self, conn: &mut PgConnection) -> QueryResult<Result<(), String>> {
        if let Some(checked) = &self.template_checked {
            return Ok(checked.clone());
        }
        let checked = match Template::find(conn, &self.tenant, &self.template) {
            Ok(t) if t.kind == TemplateKind::GiftCard => Ok(()),
            Ok(_) => Err(format!(
                "the template {:?} is not a gift-card template",
                self.template
            )),
            Err(diesel::result::Error::NotFound) => Err(format!("no template {:?}", self.template)),
            Err(e) => return Err(e),
        };
        self.template_checked = Some(checked.clone());
        Ok(checked)
    }
}

impl Writer for GiftCards {
    fn batch(&mut self, conn: &mut PgConnection, rows: Vec<Row>) -> QueryResult<Outcome> {
        let mut outcome = Outcome::default();
        let template = self.template_ok(conn)?;
        // The batch's cards the merchant already holds, by GAN or by import key, in two
        // queries.
        let gans: Vec<String> = rows
            .iter()
            .filter_map(|r| CardNumber::parse(r.get(GAN)?).ok())
            .map(|gan| gan.as_str().to_string())
            .collect();
        let keys: Vec<String> = rows
            .iter()
            .filter(|r| r.get(GAN).is_none())
            .filter_map(|r| self.key(r.line))
            .collect();
        let present: HashSet<String> = gift_cards::table
            .filter(gift_cards::merchant_id.eq(self.tenant.merchant_id()))
            .filter(gift_cards::gan.eq_any(&gans))
            .select(gift_cards::gan)
            .load::<String>(conn)?
            .into_iter()
            .chain(
                gift_cards::table
                    .filter(gift_cards::merchant_id.eq(self.tenant.merchant_id()))
                    .filter(gift_cards::import_key.eq_any(&keys))
                    .select(gift_cards::import_key.assume_not_null())
                    .load::<String>(conn)?,
            )
            .collect();
        for row in &rows {
            let v = match self.check(row) {
                Ok(v) => v,
                Err(e) => {
                    outcome.errors.extend(e);
                    continue;
                }
            };
            if let Err(why) = &template {
                outcome
                    .errors
                    .push(RowError::new(v.line, None, why.clone()));
                continue;
            }
            if let Some(gan) = &v.gan {
                if present.contains(gan.as_str()) || !self.seen.insert(gan.as_str().to_string()) {
                    outcome.skipped += 1;
                    continue;
                }
            }
            let key = match &v.gan {
                Some(_) => None,
                None => self.key(v.line),
            };
            if key.as_ref().is_some_and(|k| present.contains(k)) {
                outcome.skipped += 1;
                continue;
            }
            if self.dry_run {
                continue;
            }
            // One savepoint: a card whose key another run of the file took meanwhile is
            // not issued at all.
            let issued = conn.transaction(|conn| {
                let (card, _, _) = crate::giftcard::issue::create(
                    conn,
                    self.channels,
                    &self.tenant,
                    &self.template,
                    v.currency,
                    v.balance,
                    (v.gan.as_ref(), v.pin.unwrap_or_else(Pin::generate)),
                )?;
                if let Some(key) = &key {
                    diesel::update(gift_cards::table.find(card.id))
                        .set(gift_cards::import_key.eq(key))
                        .execute(conn)?;
                }
                Ok(card)
            });
            let card = match issued {
                Ok(card) => card,
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    info,
                )) if info.constraint_name() == Some("gift_cards_import_key_idx") => {
                    outcome.skipped += 1;
                    continue;
                }
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => {
                    outcome.errors.push(RowError::new(
                        v.line,
                        Some("gan"),
                        "this GAN belongs to a card of another merchant",
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !v.active {
                let gan = CardNumber::parse(&card.gan)
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
                crate::giftcard::deactivate::deactivate(conn, self.channels, &self.tenant, &gan)
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.detail.into()))?;
            }
            outcome.imported += 1;
        }
        Ok(outcome)
    }
}
