use crate::app::AppState;
use crate::auth::{AdminCaller, PosCaller};
use crate::db;
use crate::models::{Member, Program};
use crate::problem::ApiError;
use crate::schema::{link_opens, members, point_activities, referrals};
use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Fields in the order of the query's selection below.
#[derive(Serialize, ToSchema, Queryable)]
pub struct ReferralEntry {
    pub referral_id: Uuid,
    pub referee_id: Uuid,
    pub referee_name: String,
    pub joined_at: DateTime<Utc>,
    /// `pending`, `rewarded`, `capped` or `no_rule`.
    pub status: String,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub rewarded_at: Option<DateTime<Utc>>,
    /// Points the referrer earned for this referral.
    pub reward: i64,
    /// Points the referee earned for it.
    pub referee_reward: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReferralList {
    pub referrals: Vec<ReferralEntry>,
}

/// Whom a member brought: who joined, when, status and reward.
#[utoipa::path(operation_id = "listMemberReferrals", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path)), responses(crate::openapi::PosKey, crate::openapi::PathObject,
    (status = 200, body = ReferralList), (status = 404, body = crate::problem::Problem, content_type = "application/problem+json")))]
#[get("/members/{id}/referrals")]
pub async fn of_member(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let list = db::run(&state.pool, move |conn| {
        let member = Member::find(conn, &tenant, id)?;
        let referrals: Vec<ReferralEntry> = referrals::table
            .inner_join(members::table.on(members::id.eq(referrals::referee_id)))
            .filter(referrals::referrer_id.eq(member.id))
            .order(referrals::created_at.desc())
            .select((
                referrals::id,
                referrals::referee_id,
                members::name,
                referrals::created_at,
                referrals::status,
                referrals::first_purchase_at,
                referrals::rewarded_at,
                referrals::referrer_points,
                referrals::referee_points,
            ))
            .load(conn)?;
        Ok(ReferralList { referrals })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Serialize, ToSchema)]
pub struct TopReferrer {
    pub member_id: Uuid,
    pub name: String,
    pub joins: i64,
    pub conversions: i64,
    pub points: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReferralStats {
    /// Visitors who opened a member's referral link (each counted once per link).
    pub link_opens: i64,
    /// Visitors who opened the program's own join link.
    pub join_link_opens: i64,
    /// Members who joined through a referral.
    pub joins: i64,
    /// Referred members who have made a purchase.
    pub conversions: i64,
    pub rewarded: i64,
    pub pending: i64,
    /// Referrals past a referrer's monthly cap: nobody earned.
    pub capped: i64,
    /// Points granted by referral rewards, both sides.
    pub points_granted: i64,
    /// The ten members who brought the most.
    pub top_referrers: Vec<TopReferrer>,
}

/// How the program's referral links perform.
#[utoipa::path(operation_id = "getReferralStats", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    (status = 200, body = ReferralStats), (status = 404, body = crate::problem::Problem, content_type = "application/problem+json")))]
#[get("/programs/{id}/referral-stats")]
pub async fn stats(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let stats = db::run(&state.pool, move |conn| {
        let program = Program::find(conn, &tenant, id)?;
        let opens = |conn: &mut PgConnection, referred: bool| -> QueryResult<i64> {
            let q = link_opens::table
                .filter(link_opens::program_id.eq(program.id))
                .into_boxed();
            let q = if referred {
                q.filter(link_opens::referrer_id.is_not_null())
            } else {
                q.filter(link_opens::referrer_id.is_null())
            };
            q.count().get_result(conn)
        };
        let link_opens = opens(conn, true)?;
        let join_link_opens = opens(conn, false)?;
        let statuses: Vec<(String, i64)> = referrals::table
            .filter(referrals::program_id.eq(program.id))
            .group_by(referrals::status)
            .select((referrals::status, diesel::dsl::count_star()))
            .load(conn)?;
        let count = |s: &str| statuses.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        let conversions: i64 = referrals::table
            .filter(referrals::program_id.eq(program.id))
            .filter(referrals::first_purchase_at.is_not_null())
            .count()
            .get_result(conn)?;
        let granted: Option<i64> = point_activities::table
            .inner_join(members::table)
            .filter(members::program_id.eq(program.id))
            .filter(point_activities::type_.eq("referral"))
            .select(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
            >("sum(point_activities.delta)::bigint"))
            .first(conn)?;
        #[derive(QueryableByName)]
        struct Top {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            member_id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            joins: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            conversions: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            points: i64,
        }
        let top: Vec<Top> = diesel::sql_query(
            "SELECT m.id AS member_id, m.name, count(*) AS joins,
                    count(r.first_purchase_at) AS conversions,
                    COALESCE(sum(r.referrer_points), 0)::bigint AS points
               FROM referrals r JOIN members m ON m.id = r.referrer_id
              WHERE r.program_id = $1
              GROUP BY m.id, m.name
              ORDER BY joins DESC, conversions DESC, m.name
              LIMIT 10",
        )
        .bind::<diesel::sql_types::Uuid, _>(program.id)
        .load(conn)?;
        Ok(ReferralStats {
            link_opens,
            join_link_opens,
            joins: statuses.iter().map(|(_, n)| n).sum(),
            conversions,
            rewarded: count("rewarded"),
            pending: count("pending"),
            capped: count("capped"),
            points_granted: granted.unwrap_or(0),
            top_referrers: top
                .into_iter()
                .map(|t| TopReferrer {
                    member_id: t.member_id,
                    name: t.name,
                    joins: t.joins,
                    conversions: t.conversions,
                    points: t.points,
                })
                .collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(stats))
}
