//! The staff page (owners only): people and their roles, invitations to hand over, and
//! pending invitations. Every change is audited by `crate::staff`.

use super::error::PageError;
use super::i18n::{fill, Texts};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::db;
use crate::domain::{Email, Role};
use crate::models::staff::{Invitation, StaffMember};
use crate::problem::ApiError;
use crate::staff::{accounts, invitations, Refusal, StaffError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

/// What the page says above the lists after an action.
enum Notice {
    Problem(String),
    /// A new invitation: the email and the link, shown this once.
    Invited(String, String),
}

fn refusal_text(t: &Texts, e: &Refusal) -> String {
    match e {
        Refusal::EmailTaken => t.email_taken.into(),
        Refusal::LastOwner => t.last_owner.into(),
        Refusal::NotFound | Refusal::InvitationUsedOrExpired => t.not_found.into(),
        Refusal::WrongPassword => t.wrong_current.into(),
        Refusal::Invalid(why) => why.clone(),
    }
}

fn role_select(t: &Texts, id: &str, selected: Role) -> Markup {
    html! {
        select name="role" id=(id) {
            @for role in Role::ALL {
                option value=(role.as_str()) selected[*role == selected] { (t.role(*role)) }
            }
        }
    }
}

async fn render(
    session: &StaffSession,
    state: &AppState,
    status: StatusCode,
    notice: Option<Notice>,
) -> Result<HttpResponse, PageError> {
    let t = session.texts();
    let tenant = session.tenant;
    let now = state.clock.now();
    let (people, pending): (Vec<StaffMember>, Vec<Invitation>) =
        db::run(&state.pool, move |conn| {
            Ok((
                StaffMember::list(conn, &tenant)?,
                invitations::pending(conn, &tenant, now)?,
            ))
        })
        .await
        .map_err(|e| session.failed(e))?;
    let body = html! {
        @match &notice {
            Some(Notice::Problem(text)) => p class="errors" role="alert" id="staff-error" { (text) },
            Some(Notice::Invited(email, link)) => {
                section class="panel" id="new-invitation" {
                    h2 { (t.invitation_link) }
                    p { (fill(t.invitation_link_note, "email", email)) }
                    a class="secret-link" id="invitation-link" href=(link) { (link) }
                }
            }
            None => {}
        }
        section class="panel" aria-labelledby="people-title" {
            h2 id="people-title" { (t.people) }
            div class="table-wrap" {
                table class="cards" id="staff-list" {
                    thead { tr {
                        th scope="col" { (t.email) }
                        th scope="col" { (t.role) }
                        th scope="col" { (t.last_sign_in) }
                        th scope="col" { (t.actions) }
                    } }
                    tbody {
                        @for person in &people {
                            tr data-email=(person.email) {
                                td data-label=(t.email) {
                                    (person.email)
                                    @if person.id == session.staff.id { " " (t.you) }
                                }
                                td data-label=(t.role) { (t.role(person.role)) }
                                td data-label=(t.last_sign_in) {
                                    @match person.last_sign_in_at {
                                        Some(at) => (at.format("%Y-%m-%d %H:%M")),
                                        None => (t.never),
                                    }
                                }
                                td data-label=(t.actions) {
                                    form class="inline" method="post"
                                        action=(format!("/console/staff/{}/role", person.id)) {
                                        (session.csrf_field())
                                        label class="visually-hidden" for=(format!("role-{}", person.id)) { (t.role) }
                                        (role_select(t, &format!("role-{}", person.id), person.role))
                                        button type="submit" class="secondary" { (t.change_role) }
                                    }
                                    form class="inline" method="post"
                                        action=(format!("/console/staff/{}/remove", person.id)) {
                                        (session.csrf_field())
                                        button type="submit" class="danger" { (t.remove) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section class="panel" aria-labelledby="invite-title" {
            h2 id="invite-title" { (t.invite_title) }
            form class="stack" id="invite" method="post" action="/console/staff/invitations" {
                (session.csrf_field())
                div {
                    label for="invite-email" { (t.email) }
                    input type="email" id="invite-email" name="email" required maxlength="254";
                }
                div {
                    label for="invite-role" { (t.role) }
                    (role_select(t, "invite-role", Role::Cashier))
                }
                button type="submit" id="invite-submit" { (t.invite_button) }
            }
        }
        section class="panel" aria-labelledby="pending-title" {
            h2 id="pending-title" { (t.pending_title) }
            @if pending.is_empty() {
                p class="note" { (t.no_pending) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="pending-invitations" {
                        thead { tr {
                            th scope="col" { (t.email) }
                            th scope="col" { (t.role) }
                            th scope="col" { (t.expires) }
                            th scope="col" { (t.actions) }
                        } }
                        tbody {
                            @for inv in &pending {
                                tr {
                                    td data-label=(t.email) { (inv.email) }
                                    td data-label=(t.role) { (t.role(inv.role)) }
                                    td data-label=(t.expires) { (inv.expires_at.format("%Y-%m-%d %H:%M")) }
                                    td data-label=(t.actions) {
                                        form class="inline" method="post"
                                            action=(format!("/console/staff/invitations/{}/revoke", inv.id)) {
                                            (session.csrf_field())
                                            button type="submit" class="secondary" { (t.revoke) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(session.page_with_status(status, Section::Staff, t.staff_title, body))
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Staff)?;
    render(&session, &state, StatusCode::OK, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteForm {
    email: String,
    role: String,
}

/// A refusal shown on the page (422, or 409 for the last owner), or a failure.
async fn refused(
    session: &StaffSession,
    state: &AppState,
    e: StaffError,
) -> Result<HttpResponse, PageError> {
    match e {
        StaffError::Refused(r) => {
            let status = match r {
                Refusal::LastOwner | Refusal::EmailTaken => StatusCode::CONFLICT,
                Refusal::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let text = refusal_text(session.texts(), &r);
            render(session, state, status, Some(Notice::Problem(text))).await
        }
        StaffError::Db(e) => Err(session.failed(ApiError::from(e))),
    }
}

pub async fn invite(
    session: StaffSession,
    state: web::Data<AppState>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Staff)?;
    let t = session.texts();
    let (Ok(email), Some(role)) = (Email::parse(&form.email), Role::parse(&form.role)) else {
        let text = t.bad_email.to_string();
        return render(
            &session,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Notice::Problem(text)),
        )
        .await;
    };
    let actor = session.actor();
    let now = state.clock.now();
    let invited = {
        let email = email.clone();
        db::run(&state.pool, move |conn| {
            Ok(invitations::invite(conn, &actor, &email, role, now))
        })
        .await
        .map_err(|e| session.failed(e))?
    };
    match invited {
        Ok((_, token)) => {
            let link = format!(
                "{}/console/invitations/{token}",
                state.settings.public_url.trim_end_matches('/')
            );
            render(
                &session,
                &state,
                StatusCode::OK,
                Some(Notice::Invited(email.to_string(), link)),
            )
            .await
        }
        Err(e) => refused(&session, &state, e).await,
    }
}

fn id_of(session: &StaffSession, raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| PageError::NotFound(session.lang))
}

pub async fn revoke(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Staff)?;
    let id = id_of(&session, &path)?;
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        Ok(invitations::revoke(conn, &actor, id, now))
    })
    .await
    .map_err(|e| session.failed(e))?;
    match done {
        Ok(()) => Ok(to("/console/staff")),
        Err(e) => refused(&session, &state, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Staff)?;
    let id = id_of(&session, &path)?;
    let Some(role) = Role::parse(&form.role) else {
        return Err(PageError::NotFound(session.lang));
    };
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        Ok(accounts::change_role(conn, &actor, id, role, now))
    })
    .await
    .map_err(|e| session.failed(e))?;
    match done {
        Ok(()) => Ok(to("/console/staff")),
        Err(e) => refused(&session, &state, e).await,
    }
}

pub async fn remove(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Staff)?;
    let id = id_of(&session, &path)?;
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        Ok(accounts::remove(conn, &actor, id, now))
    })
    .await
    .map_err(|e| session.failed(e))?;
    match done {
        // Removing oneself ends one's own session with the account.
        Ok(()) if id == session.staff.id => Ok(to("/console/")),
        Ok(()) => Ok(to("/console/staff")),
        Err(e) => refused(&session, &state, e).await,
    }
}
