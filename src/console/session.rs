//! Who is asking: [`StaffSession`] is extracted from the session cookie (or the request is
//! sent to the sign-in page), and [`Section`] is the one table of which role may open what:
//! the navigation shows what it allows and [`StaffSession::require`] refuses the rest on
//! the server with a 403 page.

use super::error::PageError;
use super::i18n::{texts, Texts};
use crate::app::AppState;
use crate::db::{self, Tenant};
use crate::domain::{Language, Role};
use crate::models::staff::StaffMember;
use crate::models::Merchant;
use crate::staff::audit::Actor;
use crate::staff::{sessions, Lifetimes};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use maud::{html, Markup};

/// A part of the console and the roles that may open it. A new page adds its section here
/// (and to [`Section::NAV`] when it has a place in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Templates,
    Programs,
    Members,
    GiftCards,
    /// The merchant's CSV imports and their progress: read, not changed.
    Imports,
    /// Starting an import from the console: no navigation, the form on the imports page.
    ImportChanges,
    /// Moving a member's points or deactivating a gift card from the console: not a page
    /// of its own (no navigation), the forms on the members' and cards' pages.
    CardChanges,
    ApiKeys,
    Webhooks,
    /// A program's segments, campaigns and analytics: figures, not changes.
    Insights,
    /// Cancelling a campaign from its page: no navigation, the form on the page.
    CampaignChanges,
    Staff,
    Audit,
    Account,
}

impl Section {
    /// The navigation, in order.
    pub const NAV: &'static [Section] = &[
        Section::Home,
        Section::Templates,
        Section::Programs,
        Section::Members,
        Section::GiftCards,
        Section::Imports,
        Section::Insights,
        Section::ApiKeys,
        Section::Webhooks,
        Section::Staff,
        Section::Audit,
        Section::Account,
    ];

    pub fn roles(self) -> &'static [Role] {
        match self {
            Section::Home | Section::Account => &[Role::Owner, Role::Designer, Role::Cashier],
            Section::Templates => &[Role::Owner, Role::Designer],
            // Cashiers look members and cards up; moving points or money is the owner's.
            Section::Members | Section::GiftCards => &[Role::Owner, Role::Cashier],
            // What an import did is read as the members it made are.
            Section::Imports => &[Role::Owner, Role::Cashier],
            // The figures are read as the home page's are; a campaign is the owner's.
            Section::Insights => &[Role::Owner, Role::Cashier],
            Section::Programs
            | Section::CardChanges
            | Section::CampaignChanges
            | Section::ImportChanges
            | Section::ApiKeys
            | Section::Webhooks
            | Section::Staff
            | Section::Audit => &[Role::Owner],
        }
    }

    pub fn allows(self, role: Role) -> bool {
        self.roles().contains(&role)
    }

    pub fn path(self) -> &'static str {
        match self {
            Section::Home => "/console/",
            Section::Templates => "/console/templates",
            Section::Programs => "/console/programs",
            Section::Members => "/console/members",
            Section::GiftCards | Section::CardChanges => "/console/gift-cards",
            Section::Imports | Section::ImportChanges => "/console/imports",
            Section::ApiKeys => "/console/api-keys",
            Section::Webhooks => "/console/webhooks",
            Section::Insights | Section::CampaignChanges => "/console/insights",
            Section::Staff => "/console/staff",
            Section::Audit => "/console/audit",
            Section::Account => "/console/account",
        }
    }

    /// Stable id for links (`nav-staff`), for tests and styling.
    pub fn id(self) -> &'static str {
        match self {
            Section::Home => "home",
            Section::Templates => "templates",
            Section::Programs => "programs",
            Section::Members => "members",
            Section::GiftCards => "gift-cards",
            Section::CardChanges => "card-changes",
            Section::Imports => "imports",
            Section::ImportChanges => "import-changes",
            Section::ApiKeys => "api-keys",
            Section::Webhooks => "webhooks",
            Section::Insights => "insights",
            Section::CampaignChanges => "campaign-changes",
            Section::Staff => "staff",
            Section::Audit => "audit",
            Section::Account => "account",
        }
    }

    pub fn label(self, t: &Texts) -> &'static str {
        match self {
            Section::Home => t.nav_home,
            Section::Templates => t.nav_templates,
            Section::Programs => t.pages().nav_programs,
            Section::Members => t.pages().nav_members,
            Section::GiftCards | Section::CardChanges => t.pages().nav_gift_cards,
            Section::Imports | Section::ImportChanges => t.imports().nav_imports,
            Section::ApiKeys => t.pages().nav_api_keys,
            Section::Webhooks => t.pages().nav_webhooks,
            Section::Insights | Section::CampaignChanges => t.insights().nav_insights,
            Section::Staff => t.nav_staff,
            Section::Audit => t.nav_audit,
            Section::Account => t.nav_account,
        }
    }
}

/// A signed-in staff member: the account, the role, the merchant (`Tenant`) every query
/// takes, the CSRF token of the session's forms, the client address for the audit log.
pub struct StaffSession {
    pub staff: StaffMember,
    pub role: Role,
    pub tenant: Tenant,
    pub lang: Language,
    pub merchant_name: String,
    pub csrf: String,
    pub client: String,
    pub(super) token_hash: Vec<u8>,
}

impl StaffSession {
    /// Refuses (403 page) unless the role may open `section`.
    pub fn require(&self, section: Section) -> Result<(), PageError> {
        if section.allows(self.role) {
            Ok(())
        } else {
            Err(PageError::Forbidden(self.lang))
        }
    }

    pub fn texts(&self) -> &'static Texts {
        texts(self.lang)
    }

    /// Who did it, for the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            tenant: self.tenant,
            staff_id: Some(self.staff.id),
            client: Some(self.client.clone()),
        }
    }

    /// The hidden field every form of the session carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(super::csrf::FIELD) value=(self.csrf); }
    }

    /// An id taken from the page's path: anything else is a page not found.
    pub fn id_in_path(&self, raw: &str) -> Result<uuid::Uuid, PageError> {
        uuid::Uuid::parse_str(raw).map_err(|_| PageError::NotFound(self.lang))
    }

    /// A failure shown in the staff member's language.
    pub fn failed(&self, e: crate::problem::ApiError) -> PageError {
        PageError::Failed(self.lang, e)
    }
}

/// The session's lifetimes as configured.
pub fn lifetimes(state: &AppState) -> Lifetimes {
    Lifetimes {
        idle: state.settings.session_idle,
        max: state.settings.session_max,
    }
}

impl FromRequest for StaffSession {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .cookie(super::SESSION_COOKIE)
            .map(|c| c.value().to_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let lang = super::browser_language(req);
        let client = state
            .as_ref()
            .map(|s| crate::client_address::of(req, s.settings.trust_forwarded))
            .unwrap_or_default();
        Box::pin(async move {
            let token = token.ok_or(PageError::SignedOut)?;
            let state = state.ok_or_else(|| {
                PageError::Failed(lang, crate::problem::ApiError::internal("no state"))
            })?;
            let now = state.clock.now();
            let lifetimes = lifetimes(&state);
            let secret = state.site_secret.clone();
            let csrf = super::csrf::session_token(&secret, &token);
            let found = db::run(&state.pool, move |conn| {
                let Some(auth) = sessions::authenticate(conn, &token, now, lifetimes)? else {
                    return Ok(None);
                };
                let merchant = Merchant::find(conn, auth.tenant.merchant_id())?;
                Ok(Some((auth, merchant.name)))
            })
            .await
            .map_err(|e| PageError::Failed(lang, e))?;
            let (auth, merchant_name) = found.ok_or(PageError::SignedOut)?;
            Ok(StaffSession {
                role: auth.staff.role,
                lang: auth.staff.language,
                tenant: auth.tenant,
                staff: auth.staff,
                merchant_name,
                csrf,
                client,
                token_hash: auth.token_hash,
            })
        })
    }
}
