use crate::db::Tenant;
use crate::domain::{tokens, CardNumber};
use crate::models::pass::{Holder, Pass};
use crate::models::program::Program;
use crate::schema::{members, point_activities};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = members)]
pub struct Member {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub program_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub card_number: String,
    pub points: i64,
    pub lifetime_points: i64,
    pub tier: Option<String>,
    pub referral_code: String,
    pub referred_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new member's details, already checked by the caller.
pub struct NewMember {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub referred_by: Option<Uuid>,
}

/// Enrollment refused: this person is already a member of the program.
#[derive(Debug)]
pub struct AlreadyMember(pub &'static str);

impl Member {
    /// Enrolls a member: the member, the welcome points in the ledger and the pass, in one
    /// transaction.
    pub fn enroll(
        conn: &mut PgConnection,
        tenant: &Tenant,
        program: &Program,
        new: &NewMember,
    ) -> QueryResult<Result<(Member, Pass), AlreadyMember>> {
        let rules = program.rules()?;
        conn.transaction(|conn| {
            let id = Uuid::new_v4();
            let welcome = rules.welcome_points;
            let tier = rules.tier_for(welcome).map(|t| t.name.clone());
            // Card numbers and referral codes are random; a collision (vanishingly rare)
            // is retried with new ones inside a savepoint.
            let mut attempt = 0;
            let member = loop {
                attempt += 1;
                let result = conn.transaction(|conn| {
                    diesel::insert_into(members::table)
                        .values((
                            members::id.eq(id),
                            members::merchant_id.eq(tenant.merchant_id()),
                            members::program_id.eq(program.id),
                            members::name.eq(&new.name),
                            members::email.eq(&new.email),
                            members::phone.eq(&new.phone),
                            members::external_id.eq(&new.external_id),
                            members::card_number.eq(CardNumber::generate().as_str()),
                            members::points.eq(welcome),
                            members::lifetime_points.eq(welcome),
                            members::tier.eq(&tier),
                            members::referral_code.eq(tokens::referral_code()),
                            members::referred_by.eq(new.referred_by),
                        ))
                        .returning(Member::as_returning())
                        .get_result(conn)
                });
                match result {
                    Ok(member) => break member,
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        info,
                    )) => {
                        let constraint = info.constraint_name().unwrap_or_default();
                        let duplicate = match constraint {
                            "members_program_email_idx" => Some("email"),
                            "members_program_phone_idx" => Some("phone"),
                            "members_program_external_idx" => Some("external_id"),
                            _ => None,
                        };
                        if let Some(field) = duplicate {
                            return Ok(Err(AlreadyMember(field)));
                        }
                        if attempt >= 5 {
                            return Err(diesel::result::Error::DatabaseError(
                                diesel::result::DatabaseErrorKind::UniqueViolation,
                                info,
                            ));
                        }
                    }
                    Err(e) => return Err(e),
                }
            };
            if welcome > 0 {
                diesel::insert_into(point_activities::table)
                    .values((
                        point_activities::id.eq(Uuid::new_v4()),
                        point_activities::merchant_id.eq(tenant.merchant_id()),
                        point_activities::member_id.eq(member.id),
                        point_activities::type_.eq("welcome"),
                        point_activities::delta.eq(welcome),
                        point_activities::points_after.eq(welcome),
                        point_activities::reason.eq("welcome points"),
                    ))
                    .execute(conn)?;
            }
            let pass = Pass::create(
                conn,
                tenant.merchant_id(),
                &program.template_id,
                Holder::Member(member.id),
            )?;
            crate::pass_events::pass_created(
                conn,
                crate::pass_events::channels(),
                crate::pass_events::Card::Member(member.id),
            )?;
            Ok(Ok((member, pass)))
        })
    }

    pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<Member> {
        members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::id.eq(id))
            .select(Member::as_select())
            .first(conn)
    }

    pub fn by_card_number(
        conn: &mut PgConnection,
        tenant: &Tenant,
        number: &CardNumber,
    ) -> QueryResult<Vec<Member>> {
        members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::card_number.eq(number.as_str()))
            .select(Member::as_select())
            .load(conn)
    }
}

impl Member {
    /// The member whose referral link was opened: codes are unique across merchants, and
    /// the link is public.
    pub fn by_public_referral_code(
        conn: &mut PgConnection,
        code: &str,
    ) -> QueryResult<Option<Member>> {
        members::table
            .filter(members::referral_code.eq(code))
            .select(Member::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_referral_code(
        conn: &mut PgConnection,
        tenant: &Tenant,
        program_id: Uuid,
        code: &str,
    ) -> QueryResult<Option<Member>> {
        members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::program_id.eq(program_id))
            .filter(members::referral_code.eq(code))
            .select(Member::as_select())
            .first(conn)
            .optional()
    }
}
