use crate::db::Tenant;
use crate::domain::Currency;
use crate::schema::programs;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = programs)]
pub struct Program {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub name: String,
    pub template_id: String,
    pub currency: Currency,
    pub points_per_unit: i32,
    pub welcome_points: i64,
    pub tiers: serde_json::Value,
    pub referral: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    /// The program's public join link: `PASSFOLD_PUBLIC_URL/join/{join_code}`.
    pub join_code: String,
    pub pos_max_purchase: i64,
    pub pos_max_points_adjustment: i64,
    pub lifecycle: serde_json::Value,
    /// Segment settings (`segments::Settings`, checked when written).
    pub segments: serde_json::Value,
}

/// A program's row before insertion, its rules as the columns hold them.
pub struct NewProgram<'a> {
    pub name: &'a str,
    pub template_id: &'a str,
    pub currency: Currency,
    pub points_per_unit: i32,
    pub welcome_points: i64,
    pub tiers: serde_json::Value,
    pub referral: Option<serde_json::Value>,
    pub pos_max_purchase: i64,
    pub pos_max_points_adjustment: i64,
    pub lifecycle: serde_json::Value,
    /// Segment settings (`segments::Settings`, checked when written).
    pub segments: serde_json::Value,
}

impl Program {
    /// The program's time zone (`lifecycle.timezone`, checked when written; UTC when none).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.lifecycle
            .get("timezone")
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// Money value of one point in minor units (`lifecycle.point_value`), when set.
    pub fn point_value(&self) -> Option<i64> {
        self.lifecycle
            .get("point_value")
            .and_then(serde_json::Value::as_i64)
    }

    /// `(pos_max_purchase, pos_max_points_adjustment)` of the program a member belongs to.
    pub fn pos_limits_of_member(
        conn: &mut PgConnection,
        tenant: &Tenant,
        member_id: Uuid,
    ) -> QueryResult<(i64, i64)> {
        use crate::schema::members;
        members::table
            .inner_join(programs::table)
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::id.eq(member_id))
            .select((
                programs::pos_max_purchase,
                programs::pos_max_points_adjustment,
            ))
            .first(conn)
    }

    pub fn create(
        conn: &mut PgConnection,
        tenant: &Tenant,
        new: &NewProgram<'_>,
    ) -> QueryResult<Program> {
        diesel::insert_into(programs::table)
            .values((
                programs::id.eq(Uuid::new_v4()),
                programs::merchant_id.eq(tenant.merchant_id()),
                programs::name.eq(new.name),
                programs::template_id.eq(new.template_id),
                programs::currency.eq(new.currency),
                programs::points_per_unit.eq(new.points_per_unit),
                programs::welcome_points.eq(new.welcome_points),
                programs::tiers.eq(&new.tiers),
                programs::referral.eq(&new.referral),
                programs::join_code.eq(crate::domain::tokens::referral_code()),
                programs::pos_max_purchase.eq(new.pos_max_purchase),
                programs::pos_max_points_adjustment.eq(new.pos_max_points_adjustment),
                programs::lifecycle.eq(&new.lifecycle),
                programs::segments.eq(&new.segments),
            ))
            .returning(Program::as_returning())
            .get_result(conn)
    }

    /// The program under its row lock (changes of one program are ordered).
    pub fn find_for_update(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
    ) -> QueryResult<Program> {
        programs::table
            .filter(programs::merchant_id.eq(tenant.merchant_id()))
            .filter(programs::id.eq(id))
            .select(Program::as_select())
            .for_update()
            .first(conn)
    }

    /// Replaces the program's rules and settings (its currency and join code stay).
    pub fn update(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        new: &NewProgram<'_>,
    ) -> QueryResult<Program> {
        diesel::update(
            programs::table
                .filter(programs::merchant_id.eq(tenant.merchant_id()))
                .filter(programs::id.eq(id)),
        )
        .set((
            programs::name.eq(new.name),
            programs::template_id.eq(new.template_id),
            programs::points_per_unit.eq(new.points_per_unit),
            programs::welcome_points.eq(new.welcome_points),
            programs::tiers.eq(&new.tiers),
            programs::referral.eq(&new.referral),
            programs::pos_max_purchase.eq(new.pos_max_purchase),
            programs::pos_max_points_adjustment.eq(new.pos_max_points_adjustment),
            programs::lifecycle.eq(&new.lifecycle),
            programs::segments.eq(&new.segments),
        ))
        .returning(Program::as_returning())
        .get_result(conn)
    }

    /// Points every member's pass of the program at `template_id`; returns the passes.
    pub fn retemplate_passes(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        template_id: &str,
    ) -> QueryResult<Vec<Uuid>> {
        use crate::schema::{members, passes};
        let of_program = members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::program_id.eq(id))
            .select(members::id.nullable());
        diesel::update(
            passes::table
                .filter(passes::merchant_id.eq(tenant.merchant_id()))
                .filter(passes::member_id.eq_any(of_program)),
        )
        .set(passes::template_id.eq(template_id))
        .returning(passes::id)
        .get_results(conn)
    }

    /// The passes of these members.
    pub fn passes_of_members(
        conn: &mut PgConnection,
        tenant: &Tenant,
        member_ids: &[Uuid],
    ) -> QueryResult<Vec<Uuid>> {
        use crate::schema::passes;
        passes::table
            .filter(passes::merchant_id.eq(tenant.merchant_id()))
            .filter(passes::member_id.eq_any(member_ids))
            .select(passes::id)
            .load(conn)
    }

    pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<Program> {
        programs::table
            .filter(programs::merchant_id.eq(tenant.merchant_id()))
            .filter(programs::id.eq(id))
            .select(Program::as_select())
            .first(conn)
    }

    /// A program by its public join code (any merchant: the code is the public handle).
    pub fn by_join_code(conn: &mut PgConnection, code: &str) -> QueryResult<Option<Program>> {
        programs::table
            .filter(programs::join_code.eq(code))
            .select(Program::as_select())
            .first(conn)
            .optional()
    }

    pub fn list(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Vec<Program>> {
        programs::table
            .filter(programs::merchant_id.eq(tenant.merchant_id()))
            .order(programs::created_at.asc())
            .select(Program::as_select())
            .load(conn)
    }

    /// A page of the merchant's programs in creation order, after `after` (created, id).
    pub fn page(
        conn: &mut PgConnection,
        tenant: &Tenant,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<Program>> {
        let mut query = programs::table
            .filter(programs::merchant_id.eq(tenant.merchant_id()))
            .order((programs::created_at.asc(), programs::id.asc()))
            .limit(limit)
            .select(Program::as_select())
            .into_boxed();
        if let Some((at, id)) = after {
            query = query.filter(
                programs::created_at
                    .gt(at)
                    .or(programs::created_at.eq(at).and(programs::id.gt(id))),
            );
        }
        query.load(conn)
    }

    /// Members of the program, and of them those whose pass is registered on an Apple
    /// device or saved in Google Wallet.
    pub fn installs(
        conn: &mut PgConnection,
        tenant: &Tenant,
        program_id: Uuid,
    ) -> QueryResult<InstallCounts> {
        diesel::sql_query(
            "SELECT count(*) AS members,
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM registrations r WHERE r.pass_id = p.id)) AS apple,
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM google_installs g WHERE g.pass_id = p.id AND g.saved)) AS google
               FROM members m JOIN passes p ON p.member_id = m.id
              WHERE m.merchant_id = $1 AND m.program_id = $2",
        )
        .bind::<diesel::sql_types::Uuid, _>(tenant.merchant_id())
        .bind::<diesel::sql_types::Uuid, _>(program_id)
        .get_result(conn)
    }
}

#[derive(Debug, QueryableByName)]
pub struct InstallCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub members: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub apple: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub google: i64,
}
