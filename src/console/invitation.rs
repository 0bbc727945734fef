//! An invitation's link: `GET /console/invitations/{token}` shows who invites whom as what,
//! `POST` creates the account with the chosen password and signs the new person in. The
//! link works once and until it expires; after that it answers 404 like any unknown link.

use super::csrf;
use super::document;
use super::error::PageError;
use super::i18n::{fill, texts};
use super::sign_in::{session_cookie, to};
use crate::app::AppState;
use crate::db::{self, Tenant};
use crate::domain::{Language, Password};
use crate::models::staff::Invitation;
use crate::models::Merchant;
use crate::staff::{invitations, sessions, Refusal, StaffError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

/// An invitation a link opened: its token, the row, the merchant's name.
struct Opened<'a> {
    token: &'a str,
    invitation: &'a Invitation,
    merchant: &'a str,
}

fn form_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    lang: Language,
    opened: Opened<'_>,
    problem: Option<&str>,
) -> HttpResponse {
    let Opened {
        token,
        invitation,
        merchant,
    } = opened;
    let t = texts(lang);
    let existing = csrf::pre_session_value(req);
    let value = existing.clone().unwrap_or_else(crate::staff::new_secret);
    let title = fill(t.invitation_title, "merchant", merchant);
    let mut res = document::signed_out(
        status,
        lang,
        &title,
        html! {
            h1 { (title) }
            p id="invitation-intro" { (fill(t.invitation_intro, "role", t.role(invitation.role))) }
            @if let Some(problem) = problem {
                p class="errors" role="alert" id="invitation-error" { (problem) }
            }
            form class="panel stack" id="accept" method="post" action=(format!("/console/invitations/{token}")) {
                input type="hidden" name=(csrf::FIELD) value=(value);
                div {
                    label for="email" { (t.email) }
                    input type="email" id="email" name="email" value=(invitation.email) readonly autocomplete="username";
                }
                div {
                    label for="password" { (t.new_password) }
                    input type="password" id="password" name="password" required minlength=(Password::MIN_CHARS)
                        maxlength=(Password::MAX_CHARS) autocomplete="new-password" aria-describedby="password-rule";
                    p class="note" id="password-rule" { (t.password_rule) }
                }
                div {
                    label for="password-repeat" { (t.repeat_password) }
                    input type="password" id="password-repeat" name="password_repeat" required
                        maxlength=(Password::MAX_CHARS) autocomplete="new-password";
                }
                button type="submit" id="accept-submit" { (t.create_account) }
            }
        },
    );
    if existing.is_none() {
        let _ = res.add_cookie(&csrf::pre_session_cookie(
            &value,
            super::secure_cookies(state),
        ));
    }
    res
}

fn gone(lang: Language) -> HttpResponse {
    let t = texts(lang);
    document::signed_out(
        StatusCode::NOT_FOUND,
        lang,
        t.invitation_invalid,
        html! { p class="errors" role="alert" id="invitation-invalid" { (t.invitation_invalid) } },
    )
}

async fn load(
    state: &AppState,
    token: String,
) -> Result<Option<(Invitation, String)>, crate::problem::ApiError> {
    let now = state.clock.now();
    db::run(&state.pool, move |conn| {
        let Some(invitation) = invitations::open(conn, &token, now)? else {
            return Ok(None);
        };
        let merchant = Merchant::find(conn, invitation.merchant_id)?;
        Ok(Some((invitation, merchant.name)))
    })
    .await
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lang = super::browser_language(&req);
    let token = token.into_inner();
    let found = load(&state, token.clone())
        .await
        .map_err(|e| PageError::Failed(lang, e))?;
    Ok(match found {
        Some((invitation, merchant)) => form_page(
            &req,
            &state,
            StatusCode::OK,
            lang,
            Opened {
                token: &token,
                invitation: &invitation,
                merchant: &merchant,
            },
            None,
        ),
        None => gone(lang),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AcceptForm {
    password: String,
    password_repeat: String,
}

pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<AcceptForm>,
) -> Result<HttpResponse, PageError> {
    let lang = super::browser_language(&req);
    let t = texts(lang);
    let token = token.into_inner();
    let problem = match Password::parse_new(&form.password) {
        Err(_) => Some(t.weak_password),
        Ok(_) if form.password != form.password_repeat => Some(t.passwords_differ),
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        let found = load(&state, token.clone())
            .await
            .map_err(|e| PageError::Failed(lang, e))?;
        return Ok(match found {
            Some((invitation, merchant)) => form_page(
                &req,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                lang,
                Opened {
                    token: &token,
                    invitation: &invitation,
                    merchant: &merchant,
                },
                Some(problem),
            ),
            None => gone(lang),
        });
    }
    let password = Password::parse_new(&form.password).map_err(|_| PageError::NotFound(lang))?;
    let client = crate::client_address::of(&req, state.settings.trust_forwarded);
    let now = state.clock.now();
    let created = db::run(&state.pool, move |conn| {
        let member = match invitations::accept(conn, &token, &password, lang, &client, now) {
            Ok(member) => member,
            Err(StaffError::Refused(r)) => return Ok(Err(r)),
            Err(StaffError::Db(e)) => return Err(e.into()),
        };
        let tenant = Tenant::of_authenticated(member.merchant_id);
        Ok(Ok(sessions::start(conn, &tenant, member.id, now)?))
    })
    .await
    .map_err(|e| PageError::Failed(lang, e))?;
    match created {
        Ok(session_token) => {
            let mut res = to("/console/");
            let _ = res.add_cookie(&session_cookie(&state, &session_token));
            Ok(res)
        }
        Err(Refusal::EmailTaken) => Ok(document::signed_out(
            StatusCode::CONFLICT,
            lang,
            t.email_taken,
            html! { p class="errors" role="alert" id="invitation-error" { (t.email_taken) } },
        )),
        Err(_) => Ok(gone(lang)),
    }
}
