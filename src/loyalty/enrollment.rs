//! Joining a program, the one way both the API and the public join pages do it: details
//! checked, the referrer found, self-referral and existing members refused with a reason,
//! then the member, welcome points, pass and referral in one transaction.

use super::referral::{self, ReferralResult};
use super::ProgramRules;
use crate::db::Tenant;
use crate::domain::{tokens, BirthDate, CardNumber, PointActivityType};
use crate::models::member::{Member, NewMember};
use crate::models::pass::Holder;
use crate::models::{Pass, Program};
use crate::pass_events::{self as outbox, Card, Channels};
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

/// A person's details as typed, before checking.
#[derive(Debug, Default, Clone)]
pub struct Applicant {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    /// The birth date as read (`domain::Parsed`), its refusal kept for `/birth_date`.
    pub birth_date: Option<Result<BirthDate, String>>,
}

fn clean(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Checks and normalises a new member's details; every problem at once.
pub fn parse(input: Applicant) -> Result<NewMember, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        problems.push(FieldProblem::new(
            "/name",
            "1 to 100 characters, no control characters",
        ));
    }
    let email = clean(input.email).map(|e| e.to_lowercase());
    if let Some(e) = &email {
        let valid = e.len() <= 254
            && e.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            problems.push(FieldProblem::new("/email", "not an email address"));
        }
    }
    let phone = clean(input.phone).map(|p| {
        p.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect::<String>()
    });
    if let Some(p) = &phone {
        let digits = p.strip_prefix('+').unwrap_or(p);
        if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(FieldProblem::new(
                "/phone",
                "a phone number of 7 to 15 digits, optionally starting with +",
            ));
        }
    }
    let external_id = clean(input.external_id);
    if external_id.as_ref().is_some_and(|x| x.chars().count() > 64) {
        problems.push(FieldProblem::new("/external_id", "at most 64 characters"));
    }
    let birth_date = input
        .birth_date
        .transpose()
        .map_err(|e| problems.push(FieldProblem::new("/birth_date", e)))
        .ok()
        .flatten();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(NewMember {
        name,
        email,
        phone,
        external_id,
        referred_by: None,
        birth_date,
    })
}

/// Why a join was refused.
#[derive(Debug)]
pub enum Refusal {
    /// The referral code belongs to no member of this program.
    UnknownCode,
    /// The referrer's own details (which one): nobody earns from referring themselves.
    SelfReferral(&'static str),
    /// Already a member of the program (same email, phone or external id).
    AlreadyMember(&'static str),
}

impl Refusal {
    pub fn into_api_error(self) -> ApiError {
        match self {
            Refusal::UnknownCode => ApiError::invalid_fields(vec![FieldProblem::new(
                "/referral_code",
                "no member of this program has this referral code",
            )]),
            Refusal::SelfReferral(field) => ApiError::invalid_fields(vec![FieldProblem::new(
                "/referral_code",
                format!(
                    "this is the referrer's own code (same {field}): a member cannot refer themselves"
                ),
            )]),
            Refusal::AlreadyMember(field) => ApiError::new(
                ProblemKind::Conflict,
                format!("already a member of this program (same {field}); a referral earns nothing for an existing member"),
            ),
        }
    }
}

pub struct Joined {
    pub member: Member,
    pub pass: Pass,
    pub referral: Option<ReferralResult>,
}

impl Joined {
    /// Passes other than the new one that the join changed (a rewarded referrer's).
    pub fn changed_passes(&self) -> Vec<Uuid> {
        self.referral
            .as_ref()
            .map(|r| {
                r.changed_passes
                    .iter()
                    .copied()
                    .filter(|p| *p != self.pass.id)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The API's join: `new` enrolled in the merchant's program `program_id`, referred by the
/// member whose referral code is given (read case-blind); refusals as problems.
pub fn join_with_code(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    program_id: Uuid,
    new: NewMember,
    referral_code: Option<&str>,
) -> Result<Joined, ApiError> {
    let program = Program::find(conn, tenant, program_id)?;
    let referrer = match referral_code {
        Some(code) => {
            let code = code.trim().to_uppercase();
            let found = Member::by_referral_code(conn, tenant, program.id, &code)?;
            Some(found.ok_or_else(|| Refusal::UnknownCode.into_api_error())?)
        }
        None => None,
    };
    join(
        conn,
        (channels, at),
        tenant,
        &program,
        new,
        referrer.as_ref(),
    )?
    .map_err(Refusal::into_api_error)
}

/// Enrolls `new` in `program`, referred by `referrer` if given.
pub fn join(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    program: &Program,
    mut new: NewMember,
    referrer: Option<&Member>,
) -> Result<Result<Joined, Refusal>, ApiError> {
    let rules = super::program::rules(program)?;
    if let Some(r) = referrer {
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        let field = if same(&new.email, &r.email) {
            Some("email")
        } else if same(&new.phone, &r.phone) {
            Some("phone")
        } else if same(&new.external_id, &r.external_id) {
            Some("external_id")
        } else {
            None
        };
        if let Some(field) = field {
            return Ok(Err(Refusal::SelfReferral(field)));
        }
        new.referred_by = Some(r.id);
    }
    conn.transaction(|conn| {
        let (member, pass) = match enroll(conn, (channels, at), tenant, program, &rules, &new)? {
            Ok(done) => done,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let referral = match referrer {
            Some(r) => Some(referral::joined(
                conn,
                (channels, at),
                tenant,
                &rules,
                r.id,
                &member,
            )?),
            None => None,
        };
        // The referee's own reward changed its points: answer with them.
        let member = if referral.as_ref().is_some_and(|r| r.referee_points > 0) {
            Member::find(conn, tenant, member.id)?
        } else {
            member
        };
        Ok(Ok(Joined {
            member,
            pass,
            referral,
        }))
    })
}

/// The member with the welcome points in the ledger, and the pass, in the caller's
/// transaction.
fn enroll(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    program: &Program,
    rules: &ProgramRules,
    new: &NewMember,
) -> QueryResult<Result<(Member, Pass), Refusal>> {
    let welcome = rules.welcome_points;
    let tier = rules.tier_for(welcome).map(|t| t.name.as_str());
    // Card numbers and referral codes are random; a collision (vanishingly rare) is retried
    // with new ones inside a savepoint.
    let mut attempt = 0;
    let member = loop {
        attempt += 1;
        let (card_number, referral_code) = (CardNumber::generate(), tokens::referral_code());
        let inserted = conn.transaction(|conn| {
            let codes = (&card_number, referral_code.as_str());
            Member::insert(conn, tenant, program.id, new, codes, welcome, tier)
        });
        match inserted {
            Ok(member) => break member,
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
                if let Some(detail) = Member::duplicate_detail(info.as_ref()) {
                    return Ok(Err(Refusal::AlreadyMember(detail)));
                }
                if attempt >= 5 {
                    return Err(DieselError::DatabaseError(
                        DatabaseErrorKind::UniqueViolation,
                        info,
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    };
    if welcome > 0 {
        let activity = Uuid::new_v4();
        super::ledger::insert_activity(
            conn,
            tenant,
            member.id,
            super::ledger::Row {
                id: activity,
                kind: PointActivityType::Welcome,
                delta: welcome,
                points_after: welcome,
                reason: Some("welcome points"),
                purchase: None,
                tier: &member.tier,
                referral: None,
                at,
                purchase_id: None,
                qualifying: welcome,
            },
        )?;
        let expires = rules.lifecycle.expiry_of(PointActivityType::Welcome, at);
        super::lots::add(conn, tenant, member.id, activity, welcome, at, expires)?;
    }
    if let Some(days) = rules.lifecycle.tier_window_days {
        diesel::update(crate::schema::members::table.find(member.id))
            .set(crate::schema::members::tier_review_at.eq(at + chrono::Duration::days(days)))
            .execute(conn)?;
    }
    let pass = Pass::create(
        conn,
        tenant.merchant_id(),
        &program.template_id,
        Holder::Member(member.id),
    )?;
    outbox::pass_created(conn, channels, Card::Member(member.id))?;
    Ok(Ok((member, pass)))
}
