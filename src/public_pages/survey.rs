//! The NPS survey page behind the link an invitation puts on a member's pass (`/s/{token}`):
//! a score from 0 to 10 and an optional comment, one answer per invitation, English or
//! Russian, the form protected by the visitor's CSRF token like the join pages, posts
//! limited per client address.

use super::{lang_of, message_page, page, visitor, Theme, JOIN_WINDOW_MINUTES};
use crate::analytics::surveys::{self, survey_path};
use crate::app::AppState;
use crate::db;
use crate::problem::ApiError;
use crate::schema::join_attempts;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use maud::html;
use serde::Deserialize;

/// Survey posts allowed per client address in the join pages' window: more than joins, as
/// a shop's customers answer from its one Wi-Fi address.
const POSTS_PER_CLIENT: i64 = 60;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SurveyForm {
    #[serde(default)]
    pub csrf: String,
    /// 0 to 10.
    #[serde(default)]
    pub score: String,
    #[serde(default)]
    pub comment: String,
}

fn plain() -> Theme {
    Theme {
        bg: "#ffffff".into(),
        fg: "#111111".into(),
        label: "#555555".into(),
        logo: None,
    }
}

fn form_page(
    req: &HttpRequest,
    status: StatusCode,
    token: &str,
    csrf: &str,
    problem: Option<&str>,
    comment: &str,
) -> HttpResponse {
    let lang = lang_of(req);
    let t = lang.texts();
    let body = html! {
        h1 { (t.survey_title) }
        p class="lead" id="question" { (t.survey_question) }
        @if let Some(p) = problem {
            ul class="errors" id="errors" role="alert" { li { (p) } }
        }
        form id="survey" method="post" action=(survey_path(token)) {
            input type="hidden" name="csrf" value=(csrf);
            fieldset class="scores" {
                @for s in 0..=10 {
                    label class="score" {
                        input type="radio" name="score" value=(s) required;
                        span { (s) }
                    }
                }
            }
            p class="note" { (t.survey_unlikely) " · " (t.survey_likely) }
            label for="comment" { (t.survey_comment) }
            textarea id="comment" name="comment" maxlength="1000" { (comment) }
            button type="submit" id="survey-submit" { (t.survey_submit) }
        }
    };
    page(status, lang, &plain(), t.survey_title, body)
}

#[utoipa::path(operation_id = "showSurvey", tag = "public pages", params(("token" = String, Path, description = "the invitation's secret")), responses(
    crate::openapi::UnknownLink, (status = 200, description = "The survey form, or a note that it was answered (HTML, English or Russian by Accept-Language); sets the visitor cookie", content_type = "text/html")))]
#[get("/s/{token}")]
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = token.into_inner();
    let t = lang_of(&req).texts();
    let lookup = token.clone();
    let found = db::run(&state.pool, move |conn| Ok(surveys::find(conn, &lookup)?)).await?;
    let Some(found) = found else {
        return Ok(message_page(&req, StatusCode::NOT_FOUND, t.not_found));
    };
    if found.answered {
        return Ok(message_page(&req, StatusCode::OK, t.survey_answered));
    }
    let existing = visitor::id_of(&req);
    let visitor_id = existing.clone().unwrap_or_else(visitor::new_id);
    let csrf = visitor::csrf_token(&state.site_secret, &visitor_id, &survey_path(&token));
    let mut res = form_page(&req, StatusCode::OK, &token, &csrf, None, "");
    if existing.is_none() {
        let secure = state.settings.public_url.starts_with("https://");
        let _ = res.add_cookie(&visitor::cookie(&visitor_id, secure));
    }
    Ok(res)
}

#[utoipa::path(operation_id = "answerSurvey", tag = "public pages", params(("token" = String, Path)), responses(
    crate::openapi::Database, crate::openapi::FormBody, crate::openapi::UnknownLink,
    (status = 200, description = "Answer recorded: a thank-you page (HTML)", content_type = "text/html"),
    (status = 403, description = "The form's CSRF token does not match the visitor (HTML)", content_type = "text/html"),
    (status = 409, description = "The invitation was answered already (HTML)", content_type = "text/html"),
    (status = 422, description = "No score from 0 to 10: the form again (HTML); a field no database can store, such as a NUL character, is refused before the page as a problem",
        content((String = "text/html"), (crate::problem::Problem = "application/problem+json"))),
    (status = 429, description = "Too many posts from the client address (HTML)", content_type = "text/html")))]
#[post("/s/{token}")]
pub async fn answer(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<SurveyForm>,
) -> Result<HttpResponse, ApiError> {
    let token = token.into_inner();
    let form = form.into_inner();
    let t = lang_of(&req).texts();
    let visitor_id = visitor::id_of(&req);
    if !visitor::csrf_ok(
        &state.site_secret,
        visitor_id.as_deref(),
        &survey_path(&token),
        &form.csrf,
    ) {
        return Ok(message_page(&req, StatusCode::FORBIDDEN, t.expired_form));
    }
    let score = form
        .score
        .trim()
        .parse::<i16>()
        .ok()
        .filter(|s| (0..=10).contains(s));
    // Kept with the join attempts (pruned with them) under a key of their own, so survey
    // posts never use up an address's joins.
    let client = format!(
        "survey:{}",
        crate::client_address::of(&req, state.settings.trust_forwarded)
    );
    let now = state.clock.now();
    enum Outcome {
        NotFound,
        Limited,
        Answered(bool),
        NoScore,
    }
    let lookup = token.clone();
    let comment = form.comment.clone();
    let outcome = db::run(&state.pool, move |conn| {
        diesel::insert_into(join_attempts::table)
            .values(join_attempts::client.eq(&client))
            .execute(conn)?;
        let since = chrono::Utc::now() - chrono::Duration::minutes(JOIN_WINDOW_MINUTES);
        let recent: i64 = join_attempts::table
            .filter(join_attempts::client.eq(&client))
            .filter(join_attempts::created_at.gt(since))
            .count()
            .get_result(conn)?;
        if recent > POSTS_PER_CLIENT {
            return Ok(Outcome::Limited);
        }
        let Some(found) = surveys::find(conn, &lookup)? else {
            return Ok(Outcome::NotFound);
        };
        if found.answered {
            return Ok(Outcome::Answered(false));
        }
        let Some(score) = score else {
            return Ok(Outcome::NoScore);
        };
        Ok(Outcome::Answered(surveys::answer(
            conn,
            &found,
            score,
            Some(&comment),
            now,
        )?))
    })
    .await?;
    Ok(match outcome {
        Outcome::NotFound => message_page(&req, StatusCode::NOT_FOUND, t.not_found),
        Outcome::Limited => message_page(&req, StatusCode::TOO_MANY_REQUESTS, t.too_many),
        Outcome::Answered(true) => message_page(&req, StatusCode::OK, t.survey_thanks),
        Outcome::Answered(false) => message_page(&req, StatusCode::CONFLICT, t.survey_answered),
        Outcome::NoScore => form_page(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            &form.csrf,
            Some(t.survey_need_score),
            &form.comment,
        ),
    })
}
