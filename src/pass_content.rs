//! What one card's pass shows: its template (document and hashed images, cached per
//! template version) and the placeholder values of the member or gift card behind it.
//! Apple's package and Google's object are both built from this.

use crate::apple::assets::TemplateAssets;
use crate::db::Tenant;
use crate::domain::{CardState, Money};
use crate::models::{GiftCard, Member, Pass, Program, Template};
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

/// Whose pass it is, as loaded.
enum Holder<'a> {
    /// With the member's lots expiring first (`models::point_lot::upcoming`).
    Member(&'a Member, &'a Program, &'a [(DateTime<Utc>, i64)]),
    GiftCard(&'a GiftCard),
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
    /// One pass's content (the pass must be the tenant's).
    pub fn load(
        conn: &mut PgConnection,
        tenant: &Tenant,
        pass: Pass,
        templates: &TemplateCache,
        public_url: &str,
    ) -> QueryResult<PassContent> {
        if pass.merchant_id != tenant.merchant_id() {
            return Err(diesel::result::Error::NotFound);
        }
        Self::of_passes(conn, vec![pass], templates, public_url)?
            .pop()
            .ok_or(diesel::result::Error::NotFound)
    }

    /// The content of every pass of `ids` (of `merchants`) that exists, in a few queries
    /// for the whole batch: one per table, and one per distinct template.
    pub fn load_many(
        conn: &mut PgConnection,
        merchants: &[Uuid],
        ids: &[Uuid],
        templates: &TemplateCache,
        public_url: &str,
    ) -> QueryResult<Vec<PassContent>> {
        use crate::schema::passes;
        let passes: Vec<Pass> = passes::table
            .filter(passes::merchant_id.eq_any(merchants))
            .filter(passes::id.eq_any(ids))
            .select(Pass::as_select())
            .load(conn)?;
        Self::of_passes(conn, passes, templates, public_url)
    }

    fn of_passes(
        conn: &mut PgConnection,
        passes: Vec<Pass>,
        templates: &TemplateCache,
        public_url: &str,
    ) -> QueryResult<Vec<PassContent>> {
        use crate::schema::{gift_cards, members, merchants, programs};
        let mut merchant_ids: Vec<Uuid> = passes.iter().map(|p| p.merchant_id).collect();
        merchant_ids.sort_unstable();
        merchant_ids.dedup();
        let member_ids: Vec<Uuid> = passes.iter().filter_map(|p| p.member_id).collect();
        let card_ids: Vec<Uuid> = passes.iter().filter_map(|p| p.gift_card_id).collect();
        let names: HashMap<Uuid, String> = merchants::table
            .filter(merchants::id.eq_any(&merchant_ids))
            .select((merchants::id, merchants::name))
            .load(conn)?
            .into_iter()
            .collect();
        let mut members: HashMap<Uuid, Member> = HashMap::new();
        let mut programs: HashMap<Uuid, Program> = HashMap::new();
        let mut expiring = HashMap::new();
        if !member_ids.is_empty() {
            expiring = crate::models::point_lot::upcoming(conn, &merchant_ids, &member_ids)?;
            members = members::table
                .filter(members::merchant_id.eq_any(&merchant_ids))
                .filter(members::id.eq_any(&member_ids))
                .select(Member::as_select())
                .load(conn)?
                .into_iter()
                .map(|m| (m.id, m))
                .collect();
            let program_ids: Vec<Uuid> = members.values().map(|m| m.program_id).collect();
            programs = programs::table
                .filter(programs::merchant_id.eq_any(&merchant_ids))
                .filter(programs::id.eq_any(&program_ids))
                .select(Program::as_select())
                .load(conn)?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
        }
        let mut cards: HashMap<Uuid, GiftCard> = HashMap::new();
        if !card_ids.is_empty() {
            cards = gift_cards::table
                .filter(gift_cards::merchant_id.eq_any(&merchant_ids))
                .filter(gift_cards::id.eq_any(&card_ids))
                .select(GiftCard::as_select())
                .load(conn)?
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
        }
        let mut loaded: HashMap<(Uuid, String), Arc<LoadedTemplate>> = HashMap::new();
        let mut contents = Vec::with_capacity(passes.len());
        for pass in passes {
            let key = (pass.merchant_id, pass.template_id.clone());
            let template = match loaded.get(&key) {
                Some(t) => t.clone(),
                None => {
                    let tenant = Tenant::of_authenticated(pass.merchant_id);
                    let t = templates.load(conn, &tenant, &pass.template_id)?;
                    loaded.insert(key, t.clone());
                    t
                }
            };
            let merchant_name = names.get(&pass.merchant_id).cloned().unwrap_or_default();
            let card = match (pass.member_id, pass.gift_card_id) {
                (Some(id), _) => members.get(&id).and_then(|m| {
                    let lots = expiring.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                    programs
                        .get(&m.program_id)
                        .map(|p| Holder::Member(m, p, lots))
                }),
                (None, Some(id)) => cards.get(&id).map(Holder::GiftCard),
                (None, None) => None,
            };
            // A pass whose card is gone (never, short of a manual deletion) has no content.
            let Some(card) = card else { continue };
            contents.push(Self::build(
                pass,
                template,
                merchant_name,
                card,
                public_url,
            )?);
        }
        Ok(contents)
    }

    fn build(
        pass: Pass,
        template: Arc<LoadedTemplate>,
        merchant_name: String,
        card: Holder<'_>,
        public_url: &str,
    ) -> QueryResult<PassContent> {
        let mut context = Context::default();
        context.set("merchant.name", Value::Text(merchant_name));
        let mut program_id = None;
        let (card_number, voided) = match card {
            Holder::Member(member, program, lots) => {
                program_id = Some(program.id);
                // The next expiry, by the program's days.
                let tz = program.tz();
                let (expiring, day) = match crate::models::point_lot::first_day(lots, tz) {
                    Some((points, day)) => (points, Some(day)),
                    None => (0, None),
                };
                context.set("expiring_points", Value::Number(expiring));
                match day {
                    Some(day) => context.set("expiry_date", Value::Date(day)),
                    None => context.set("expiry_date", Value::Text(String::new())),
                };
                let first_name = member
                    .name
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                context
                    .set("program.name", Value::Text(program.name.clone()))
                    .set("member.name", Value::Text(member.name.clone()))
                    .set("member.first_name", Value::Text(first_name))
                    .set("card_number", Value::Text(member.card_number.clone()))
                    .set("points", Value::Number(member.points))
                    .set("tier", Value::Text(member.tier.clone().unwrap_or_default()))
                    .set(
                        "referral_url",
                        Value::Text(crate::urls::referral_url(public_url, &member.referral_code)),
                    );
                // An erased member's pass is void: installed passes show it as such.
                (member.card_number.clone(), member.erased_at.is_some())
            }
            Holder::GiftCard(card) => {
                context
                    .set("gan", Value::Text(card.gan.clone()))
                    .set("card_number", Value::Text(card.gan.clone()))
                    .set(
                        "balance",
                        Value::Money(Money::new(card.balance, card.currency)),
                    )
                    .set("currency", Value::Text(card.currency.code().to_string()));
                (card.gan.clone(), card.state == CardState::Deactivated)
            }
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
