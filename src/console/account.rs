//! The account page, for everyone signed in: change one's password (the other sessions
//! end), choose the console's language, sign out everywhere.

use super::error::PageError;
use super::session::{Section, StaffSession};
use super::sign_in::{forget_session, to};
use crate::app::AppState;
use crate::db;
use crate::domain::{Language, Password};
use crate::problem::ApiError;
use crate::staff::{accounts, sessions, Refusal, StaffError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::html;
use serde::Deserialize;

enum Notice {
    Ok(&'static str),
    Problem(String),
}

fn render(session: &StaffSession, status: StatusCode, notice: Option<Notice>) -> HttpResponse {
    let t = session.texts();
    let body = html! {
        @match &notice {
            Some(Notice::Ok(text)) => p class="notice" role="status" id="account-notice" { (text) },
            Some(Notice::Problem(text)) => p class="errors" role="alert" id="account-error" { (text) },
            None => {}
        }
        section class="panel" aria-labelledby="password-title" {
            h2 id="password-title" { (t.change_password_title) }
            form class="stack" id="change-password" method="post" action="/console/account/password" {
                (session.csrf_field())
                input type="email" name="username" value=(session.staff.email) autocomplete="username" hidden;
                div {
                    label for="current-password" { (t.current_password) }
                    input type="password" id="current-password" name="current" required
                        maxlength=(Password::MAX_CHARS) autocomplete="current-password";
                }
                div {
                    label for="new-password" { (t.new_password) }
                    input type="password" id="new-password" name="new" required minlength=(Password::MIN_CHARS)
                        maxlength=(Password::MAX_CHARS) autocomplete="new-password" aria-describedby="new-password-rule";
                    p class="note" id="new-password-rule" { (t.password_rule) }
                }
                button type="submit" id="change-password-submit" { (t.save_password) }
            }
        }
        section class="panel" aria-labelledby="language-title" {
            h2 id="language-title" { (t.language_title) }
            form class="inline" id="language" method="post" action="/console/account/language" {
                (session.csrf_field())
                label class="visually-hidden" for="language-choice" { (t.language_title) }
                select id="language-choice" name="language" {
                    @for lang in Language::ALL {
                        option value=(lang.as_str()) lang=(lang.as_str()) selected[*lang == session.lang] {
                            (super::i18n::texts(*lang).language_name)
                        }
                    }
                }
                button type="submit" class="secondary" id="language-submit" { (t.save_language) }
            }
        }
        section class="panel" aria-labelledby="everywhere-title" {
            h2 id="everywhere-title" { (t.everywhere_title) }
            p class="note" { (t.everywhere_note) }
            form method="post" action="/console/account/sign-out-everywhere" {
                (session.csrf_field())
                button type="submit" class="danger" id="sign-out-everywhere" { (t.everywhere_button) }
            }
        }
    };
    session.page_with_status(status, Section::Account, t.account_title, body)
}

pub async fn show(session: StaffSession) -> Result<HttpResponse, PageError> {
    session.require(Section::Account)?;
    Ok(render(&session, StatusCode::OK, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    current: String,
    new: String,
}

pub async fn change_password(
    session: StaffSession,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Account)?;
    let t = session.texts();
    let new = match Password::parse_new(&form.new) {
        Ok(p) => p,
        Err(_) => {
            return Ok(render(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Notice::Problem(t.weak_password.into())),
            ))
        }
    };
    let current = Password::presented(&form.current);
    let actor = session.actor();
    let keep = session.token_hash.clone();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        Ok(accounts::change_password(
            conn, &actor, &current, &new, &keep, now,
        ))
    })
    .await
    .map_err(|e| session.failed(e))?;
    match done {
        Ok(()) => Ok(render(
            &session,
            StatusCode::OK,
            Some(Notice::Ok(t.password_changed)),
        )),
        Err(StaffError::Refused(Refusal::WrongPassword)) => Ok(render(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Notice::Problem(t.wrong_current.into())),
        )),
        Err(StaffError::Refused(_)) => Err(PageError::NotFound(session.lang)),
        Err(StaffError::Db(e)) => Err(session.failed(ApiError::from(e))),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LanguageForm {
    language: String,
}

pub async fn change_language(
    session: StaffSession,
    state: web::Data<AppState>,
    form: web::Form<LanguageForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Account)?;
    let Some(language) = Language::parse(&form.language) else {
        return Ok(render(&session, StatusCode::UNPROCESSABLE_ENTITY, None));
    };
    let actor = session.actor();
    let now = state.clock.now();
    db::run(&state.pool, move |conn| {
        accounts::set_language(conn, &actor, language, now).map_err(|e| match e {
            StaffError::Db(e) => ApiError::from(e),
            StaffError::Refused(_) => ApiError::not_found("no such account"),
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    Ok(to("/console/account"))
}

pub async fn sign_out_everywhere(
    session: StaffSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Account)?;
    let actor = session.actor();
    let now = state.clock.now();
    db::run(&state.pool, move |conn| {
        Ok(sessions::sign_out_everywhere(conn, &actor, now)?)
    })
    .await
    .map_err(|e| session.failed(e))?;
    let mut res = to("/console/");
    forget_session(&mut res);
    Ok(res)
}
