//! `GET /console/` (the sign-in page when signed out, the home page when signed in),
//! `POST /console/sign-in` and `POST /console/sign-out`.

use super::csrf;
use super::document;
use super::error::PageError;
use super::i18n::{fill, texts};
use super::session::{lifetimes, StaffSession};
use crate::app::AppState;
use crate::db;
use crate::domain::Language;
use crate::staff::sessions::{self, SignIn};
use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

/// The session cookie for a new session.
pub fn session_cookie(state: &AppState, token: &str) -> Cookie<'static> {
    let max = lifetimes(state).max.num_seconds();
    Cookie::build(super::SESSION_COOKIE, token.to_string())
        .path("/console")
        .http_only(true)
        .secure(super::secure_cookies(state))
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max))
        .finish()
}

fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path("/console").finish();
    c.make_removal();
    c
}

/// To the sign-in page (or home) with a fresh GET.
pub fn to(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, path.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

pub async fn to_front() -> HttpResponse {
    to("/console/")
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    password: String,
}

/// The sign-in page, with the double-submit cookie its form needs.
fn sign_in_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    lang: Language,
    email: &str,
    problem: Option<String>,
) -> HttpResponse {
    let t = texts(lang);
    let existing = csrf::pre_session_value(req);
    let value = existing.clone().unwrap_or_else(crate::staff::new_secret);
    let mut res = document::signed_out(
        status,
        lang,
        t.sign_in_title,
        html! {
            h1 { (t.sign_in_title) }
            @if let Some(problem) = &problem {
                p class="errors" role="alert" id="sign-in-error" { (problem) }
            }
            form class="panel stack" id="sign-in" method="post" action="/console/sign-in" {
                input type="hidden" name=(csrf::FIELD) value=(value);
                div {
                    label for="email" { (t.email) }
                    input type="email" id="email" name="email" required autocomplete="username"
                        maxlength="254" value=(email);
                }
                div {
                    label for="password" { (t.password) }
                    input type="password" id="password" name="password" required
                        autocomplete="current-password" maxlength="256";
                }
                button type="submit" id="sign-in-submit" { (t.sign_in_button) }
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

/// `GET /console/`.
pub async fn front(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Result<StaffSession, PageError>,
) -> Result<HttpResponse, PageError> {
    match session {
        Ok(session) => super::home::page(session, state).await,
        Err(PageError::SignedOut) => {
            let lang = super::browser_language(&req);
            let mut res = sign_in_page(&req, &state, StatusCode::OK, lang, "", None);
            // A cookie that named no live session (expired, signed out elsewhere) goes.
            if req.cookie(super::SESSION_COOKIE).is_some() {
                let _ = res.add_removal_cookie(&removal(super::SESSION_COOKIE));
            }
            Ok(res)
        }
        Err(other) => Err(other),
    }
}

/// `POST /console/sign-in` (its CSRF double-submit already checked by the guard).
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let lang = super::browser_language(&req);
    let t = texts(lang);
    let form = form.into_inner();
    let client = crate::client_address::of(&req, state.settings.trust_forwarded);
    let now = state.clock.now();
    let lifetimes = lifetimes(&state);
    let email = form.email.clone();
    let outcome = db::run(&state.pool, move |conn| {
        Ok(sessions::sign_in(
            conn,
            &form.email,
            &form.password,
            &client,
            now,
            lifetimes,
        )?)
    })
    .await
    .map_err(|e| PageError::Failed(lang, e))?;
    match outcome {
        SignIn::Ok { token, .. } => {
            let mut res = to("/console/");
            let _ = res.add_cookie(&session_cookie(&state, &token));
            Ok(res)
        }
        SignIn::Wrong => Ok(sign_in_page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            lang,
            &email,
            Some(t.wrong_credentials.to_string()),
        )),
        SignIn::Limited(seconds) => {
            let minutes = seconds.div_ceil(60).to_string();
            let mut res = sign_in_page(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                lang,
                &email,
                Some(fill(t.too_many, "minutes", &minutes)),
            );
            if let Ok(v) = header::HeaderValue::from_str(&seconds.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(res)
        }
    }
}

/// `POST /console/sign-out`: this session ends.
pub async fn sign_out(
    state: web::Data<AppState>,
    session: Result<StaffSession, PageError>,
) -> Result<HttpResponse, PageError> {
    if let Ok(session) = session {
        let actor = session.actor();
        let hash = session.token_hash.clone();
        let now = state.clock.now();
        db::run(&state.pool, move |conn| {
            Ok(sessions::sign_out(conn, &actor, &hash, now)?)
        })
        .await
        .map_err(|e| session.failed(e))?;
    }
    let mut res = to("/console/");
    let _ = res.add_removal_cookie(&removal(super::SESSION_COOKIE));
    Ok(res)
}

/// Ends the browser's session cookie (after "sign out everywhere").
pub fn forget_session(res: &mut HttpResponse) {
    let _ = res.add_removal_cookie(&removal(super::SESSION_COOKIE));
}
