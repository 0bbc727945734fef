//! What one card's pass shows: its template (document and hashed images, cached per
//! template version) and the placeholder values of the member or gift card behind it.
//! Apple's package and Google's object are both built from this.

use crate::apple::assets::TemplateAssets;
use crate::db::Tenant;
use crate::domain::{CardState, Money};
use crate::models::{GiftCard, Member, Merchant, Pass, Program, Template};
use crate::template::{Context, TemplateDocument, Value};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub struct LoadedTemplate {
    pub version: i32,
    pub updated_at: DateTime<Utc>,
    pub document: TemplateDocument,
    pub assets: Arc<TemplateAssets>,
}

/// Templates by (merchant, id), each valid for the version it was loaded at, so images
/// are read and hashed once per template version rather than once per pass.
#[derive(Default)]
pub struct TemplateCache {
    entries: Mutex<HashMap<(Uuid, String), Arc<LoadedTemplate>>>,
}

const TEMPLATE_CACHE_ENTRIES: usize = 1024;

impl TemplateCache {
    pub fn load(
        &self,
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: &str,
    ) -> QueryResult<Arc<LoadedTemplate>> {
        let row = Template::find(conn, tenant, id)?;
        let key = (tenant.merchant_id(), id.to_string());
        if let Some(hit) = self.lock().get(&key).filter(|t| t.version == row.version) {
            return Ok(hit.clone());
        }
        let images = Template::images(conn, tenant, id)?;
        let loaded = Arc::new(LoadedTemplate {
            version: row.version,
            updated_at: row.updated_at,
            document: row.parsed()?,
            assets: TemplateAssets::new(&images),
        });
        let mut entries = self.lock();
        if entries.len() >= TEMPLATE_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, loaded.clone());
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, String), Arc<LoadedTemplate>>> {
        // A poisoned cache only means a panic elsewhere; its data is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct PassContent {
    pub pass: Pass,
    pub template: Arc<LoadedTemplate>,
    pub context: Context,
    /// What the barcode carries by default: the card number or GAN.
    pub card_number: String,
    pub voided: bool,
    /// The loyalty program of a member's pass (Google's class follows it).
    pub program_id: Option<Uuid>,
}

impl PassContent {
    pub fn load(
        conn: &mut PgConnection,
        tenant: &Tenant,
        pass: Pass,
        templates: &TemplateCache,
        public_url: &str,
    ) -> QueryResult<PassContent> {
        let template = templates.load(conn, tenant, &pass.template_id)?;
        let merchant = Merchant::find(conn, tenant.merchant_id())?;
        let mut context = Context::default();
        context.set("merchant.name", Value::Text(merchant.name));
        let mut program_id = None;
        let (card_number, voided) = match (pass.member_id, pass.gift_card_id) {
            (Some(member_id), _) => {
                let member = Member::find(conn, tenant, member_id)?;
                let program = Program::find(conn, tenant, member.program_id)?;
                program_id = Some(program.id);
                let first_name = member
                    .name
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                context
                    .set("program.name", Value::Text(program.name))
                    .set("member.name", Value::Text(member.name.clone()))
                    .set("member.first_name", Value::Text(first_name))
                    .set("card_number", Value::Text(member.card_number.clone()))
                    .set("points", Value::Number(member.points))
                    .set("tier", Value::Text(member.tier.clone().unwrap_or_default()))
                    .set(
                        "referral_url",
                        Value::Text(crate::urls::referral_url(public_url, &member.referral_code)),
                    );
                (member.card_number, false)
            }
            (None, Some(card_id)) => {
                let card = GiftCard::find(conn, tenant, card_id)?;
                context
                    .set("gan", Value::Text(card.gan.clone()))
                    .set("card_number", Value::Text(card.gan.clone()))
                    .set(
                        "balance",
                        Value::Money(Money::new(card.balance, card.currency)),
                    )
                    .set("currency", Value::Text(card.currency.code().to_string()));
                (card.gan, card.state == CardState::Deactivated)
            }
            (None, None) => return Err(diesel::result::Error::NotFound),
        };
        Ok(PassContent {
            pass,
            template,
            context,
            card_number,
            voided,
            program_id,
        })
    }

    /// When the pass last changed. A template change moves the `updated_at` of every pass
    /// built from it in the same transaction (with the database's clock, like every other
    /// change), so the template's own time (the app's clock) is not needed.
    pub fn last_modified(&self) -> DateTime<Utc> {
        self.pass.updated_at
    }

    /// Changes whenever what the pass shows may have changed.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.pass.update_tag, self.template.version)
    }
}
