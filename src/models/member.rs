use crate::db::Tenant;
use crate::domain::CardNumber;
use crate::schema::members;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::DatabaseErrorInformation;
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

impl Member {
    /// Inserts a member of `program_id` holding `points` (lifetime points alike) and `tier`.
    pub fn insert(
        conn: &mut PgConnection,
        tenant: &Tenant,
        program_id: Uuid,
        new: &NewMember,
        (card_number, referral_code): (&CardNumber, &str),
        points: i64,
        tier: Option<&str>,
    ) -> QueryResult<Member> {
        diesel::insert_into(members::table)
            .values((
                members::id.eq(Uuid::new_v4()),
                members::merchant_id.eq(tenant.merchant_id()),
                members::program_id.eq(program_id),
                members::name.eq(&new.name),
                members::email.eq(&new.email),
                members::phone.eq(&new.phone),
                members::external_id.eq(&new.external_id),
                members::card_number.eq(card_number.as_str()),
                members::points.eq(points),
                members::lifetime_points.eq(points),
                members::tier.eq(tier),
                members::referral_code.eq(referral_code),
                members::referred_by.eq(new.referred_by),
            ))
            .returning(Member::as_returning())
            .get_result(conn)
    }

    /// Which of a person's details a unique violation on `members` names (a program has
    /// one member per email, phone and external id); None for the generated codes.
    pub fn duplicate_detail(info: &dyn DatabaseErrorInformation) -> Option<&'static str> {
        match info.constraint_name()? {
            "members_program_email_idx" => Some("email"),
            "members_program_phone_idx" => Some("phone"),
            "members_program_external_idx" => Some("external_id"),
            _ => None,
        }
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
