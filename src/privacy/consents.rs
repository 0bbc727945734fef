//! Consents: an append-only record of what a member agreed to or withdrew, when, and
//! through what (`member_consents`, migration 000050). The latest row of a kind is the
//! member's current answer.

use crate::db::Tenant;
use crate::problem::FieldProblem;
use crate::schema::member_consents;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What was agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The program's terms (joining implies them: the join page asks for them).
    Terms,
    /// Marketing messages on the card (pass messages, pushes).
    MarketingPush,
    /// Marketing by email.
    MarketingEmail,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Terms => "terms",
            Kind::MarketingPush => "marketing_push",
            Kind::MarketingEmail => "marketing_email",
        }
    }
}

/// Where the consent was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    JoinPage,
    Pos,
    Api,
    Import,
    Console,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::JoinPage => "join_page",
            Source::Pos => "pos",
            Source::Api => "api",
            Source::Import => "import",
            Source::Console => "console",
        }
    }

    /// A member created or changed through the API: `pos` with a till's key, else `api`.
    pub fn of_scope(scope: crate::domain::Scope) -> Self {
        match scope {
            crate::domain::Scope::Pos => Source::Pos,
            crate::domain::Scope::Admin => Source::Api,
        }
    }
}

/// Records one consent (or its withdrawal, `granted` false) in the caller's transaction.
pub fn record(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
    kind: Kind,
    granted: bool,
    source: Source,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    insert(conn, tenant, member, (kind, granted), (source, at), None)
}

/// What a public page's visitor was sent from: the client address (as the rate limits see
/// it) and the browser's User-Agent.
pub struct Origin<'a> {
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
}

/// Records a consent given on the public join page, with where it came from.
pub fn record_on_page(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
    (kind, granted): (Kind, bool),
    at: DateTime<Utc>,
    origin: &Origin<'_>,
) -> QueryResult<()> {
    insert(
        conn,
        tenant,
        member,
        (kind, granted),
        (Source::JoinPage, at),
        Some(origin),
    )
}

/// The longest User-Agent kept (the column's check): a longer one is cut.
const USER_AGENT_CHARS: usize = 512;

fn insert(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
    (kind, granted): (Kind, bool),
    (source, at): (Source, DateTime<Utc>),
    origin: Option<&Origin<'_>>,
) -> QueryResult<()> {
    // Text a database cannot store (NUL) or that is only noise is not kept.
    let clean = |s: &str, max: usize| -> Option<String> {
        let s: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
        (!s.trim().is_empty()).then_some(s)
    };
    diesel::insert_into(member_consents::table)
        .values((
            member_consents::merchant_id.eq(tenant.merchant_id()),
            member_consents::member_id.eq(member),
            member_consents::kind.eq(kind.as_str()),
            member_consents::granted.eq(granted),
            member_consents::source.eq(source.as_str()),
            member_consents::at.eq(at),
            member_consents::ip.eq(origin.and_then(|o| clean(o.ip, 64))),
            member_consents::user_agent.eq(origin
                .and_then(|o| o.user_agent)
                .and_then(|ua| clean(ua, USER_AGENT_CHARS))),
        ))
        .execute(conn)
        .map(drop)
}

/// Consents as the API takes them: `{"marketing": true}` (email and card messages alike),
/// or each kind by name. Absent: nothing said.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentsInput {
    /// The program's terms.
    pub terms: Option<bool>,
    /// Marketing by every channel: `marketing_push` and `marketing_email` together.
    pub marketing: Option<bool>,
    pub marketing_push: Option<bool>,
    pub marketing_email: Option<bool>,
}

impl ConsentsInput {
    /// The consents to record, each kind once; `marketing` and a kind of it disagreeing is
    /// a problem at `pointer`.
    pub fn parse(&self, pointer: &str) -> Result<Vec<(Kind, bool)>, FieldProblem> {
        let mut out = Vec::new();
        if let Some(t) = self.terms {
            out.push((Kind::Terms, t));
        }
        for (kind, own) in [
            (Kind::MarketingPush, self.marketing_push),
            (Kind::MarketingEmail, self.marketing_email),
        ] {
            match (self.marketing, own) {
                (Some(a), Some(b)) if a != b => {
                    return Err(FieldProblem::new(
                        format!("{pointer}/{}", kind.as_str()),
                        "disagrees with `marketing`",
                    ))
                }
                (Some(v), _) | (None, Some(v)) => out.push((kind, v)),
                (None, None) => {}
            }
        }
        Ok(out)
    }
}

/// One consent as recorded.
#[derive(Debug, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = member_consents)]
pub struct Consent {
    pub kind: String,
    pub granted: bool,
    pub source: String,
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A member's consents, oldest first.
pub fn of_member(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
) -> QueryResult<Vec<Consent>> {
    member_consents::table
        .filter(member_consents::merchant_id.eq(tenant.merchant_id()))
        .filter(member_consents::member_id.eq(member))
        .order(member_consents::id)
        .select(Consent::as_select())
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marketing_stands_for_both_kinds() {
        let input = ConsentsInput {
            marketing: Some(true),
            ..Default::default()
        };
        assert_eq!(
            input.parse("/consents").unwrap(),
            vec![(Kind::MarketingPush, true), (Kind::MarketingEmail, true)]
        );
        let split = ConsentsInput {
            marketing_push: Some(false),
            terms: Some(true),
            ..Default::default()
        };
        assert_eq!(
            split.parse("/consents").unwrap(),
            vec![(Kind::Terms, true), (Kind::MarketingPush, false)]
        );
        let clash = ConsentsInput {
            marketing: Some(true),
            marketing_email: Some(false),
            ..Default::default()
        };
        assert_eq!(
            clash.parse("/consents").unwrap_err().pointer,
            "/consents/marketing_email"
        );
    }
}
