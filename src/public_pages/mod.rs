//! The customer-facing web pages: a member's referral link (`/r/{code}`) and a program's
//! own join link (`/join/{code}`) open a join page in the merchant's colours and logo;
//! joining leads to a welcome page with "Add to Apple Wallet" and "Add to Google Wallet".
//!
//! Server-rendered with maud (everything interpolated is HTML-escaped), English or Russian
//! by `Accept-Language`, nothing loaded from another host (a strict Content-Security-Policy
//! says so to the browser too), forms protected by a per-visitor CSRF token, joins limited
//! per client address.

pub mod i18n;
pub mod qr;
pub mod survey;
pub mod visitor;

use crate::app::AppState;
use crate::db::{self, Tenant};
use crate::domain::ReferralStatus;
use crate::loyalty::enrollment::{self, Applicant, Refusal};
use crate::loyalty::ReferralTrigger;
use crate::models::{Member, Pass, Program};
use crate::pass_content::LoadedTemplate;
use crate::privacy::consents;
use crate::problem::ApiError;
use crate::schema::join_attempts;
use crate::urls::{join_url, referral_url, template_image_path};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use i18n::{Lang, Texts};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;

/// Join attempts allowed per client address in the window.
const JOINS_PER_CLIENT: i64 = 10;
const JOIN_WINDOW_MINUTES: i64 = 15;

/// Which kind of public link.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Referral,
    Program,
}

impl Link {
    fn path(self, code: &str) -> String {
        match self {
            Link::Referral => crate::urls::referral_path(code),
            Link::Program => crate::urls::join_path(code),
        }
    }
}

/// A public link resolved: the program, its merchant, the referrer if any, the design.
struct Resolved {
    code: String,
    tenant: Tenant,
    program: Program,
    referrer: Option<Member>,
    template: Arc<LoadedTemplate>,
}

/// Codes are short upper-case words of our alphabet; anything else is not a link of ours.
fn normalize(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    (!code.is_empty() && code.len() <= 16 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(code)
}

fn resolve(
    conn: &mut PgConnection,
    state: &AppState,
    link: Link,
    code: &str,
) -> Result<Option<Resolved>, ApiError> {
    let Some(code) = normalize(code) else {
        return Ok(None);
    };
    let (program, referrer) = match link {
        Link::Referral => {
            let Some(member) = Member::by_public_referral_code(conn, &code)? else {
                return Ok(None);
            };
            // The code is the public handle of this member's merchant.
            let tenant = Tenant::of_authenticated(member.merchant_id);
            (
                Program::find(conn, &tenant, member.program_id)?,
                Some(member),
            )
        }
        Link::Program => match Program::by_join_code(conn, &code)? {
            Some(p) => (p, None),
            None => return Ok(None),
        },
    };
    let tenant = Tenant::of_authenticated(program.merchant_id);
    let template = state.templates.load(conn, &tenant, &program.template_id)?;
    Ok(Some(Resolved {
        code,
        tenant,
        program,
        referrer,
        template,
    }))
}

/// Colours (re-rendered from their parsed values, so nothing typed reaches the CSS) and the
/// logo of the merchant's template.
struct Theme {
    bg: String,
    fg: String,
    label: String,
    logo: Option<String>,
}

fn css_color(text: Option<&str>, fallback: &str) -> String {
    text.and_then(crate::template::validate::hex_color)
        .unwrap_or_else(|| fallback.to_string())
}

fn theme(merchant: Uuid, template_id: &str, template: &LoadedTemplate) -> Theme {
    let colors = &template.document.colors;
    let logo = ["logo@2x.png", "logo.png"]
        .into_iter()
        .find(|f| template.assets.has(f))
        .map(|f| template_image_path(merchant, template_id, template.version, f));
    Theme {
        bg: css_color(Some(&colors.background), "#ffffff"),
        fg: css_color(Some(&colors.foreground), "#111111"),
        label: css_color(colors.label.as_deref(), "#555555"),
        logo,
    }
}

/// A whole page: the layout in the merchant's theme, sent with the headers every public page
/// carries. The stylesheet nonce is new for each answer.
fn page(status: StatusCode, lang: Lang, theme: &Theme, title: &str, body: Markup) -> HttpResponse {
    let nonce = crate::domain::tokens::secret(32);
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; img-src 'self'; style-src 'self' 'nonce-{nonce}'; \
                 form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
            ),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(layout(lang, theme, &nonce, title, body).into_string())
}

fn layout(lang: Lang, theme: &Theme, nonce: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href="/public-assets/page.css";
                style nonce=(nonce) {
                    (PreEscaped(format!(":root{{--bg:{};--fg:{};--label:{}}}", theme.bg, theme.fg, theme.label)))
                }
            }
            body {
                main class="card" {
                    @if let Some(logo) = &theme.logo {
                        img class="logo" src=(logo) alt="";
                    }
                    (body)
                }
            }
        }
    }
}

fn lang_of(req: &HttpRequest) -> Lang {
    Lang::from_accept_language(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// A page with one message (not found, expired form, too many attempts).
fn message_page(req: &HttpRequest, status: StatusCode, text: &str) -> HttpResponse {
    let lang = lang_of(req);
    let plain = Theme {
        bg: "#ffffff".into(),
        fg: "#111111".into(),
        label: "#555555".into(),
        logo: None,
    };
    page(
        status,
        lang,
        &plain,
        text,
        html! { p class="lead" { (text) } },
    )
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

/// What the customer typed, shown again (escaped) when the form comes back.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct JoinForm {
    name: String,
    email: String,
    phone: String,
    /// Present (any value) when the terms were accepted.
    consent: Option<String>,
    /// The token of the page the form came from.
    csrf: String,
}

fn join_page(
    status: StatusCode,
    lang: Lang,
    r: &Resolved,
    link: Link,
    csrf: &str,
    form: &JoinForm,
    problems: &[&str],
) -> HttpResponse {
    let t: &Texts = lang.texts();
    let rules = crate::loyalty::program::rules(&r.program).ok();
    let rule = rules.as_ref().and_then(|r| r.referral.clone());
    let theme = theme(r.program.merchant_id, &r.program.template_id, &r.template);
    let body = html! {
        @if let Some(referrer) = &r.referrer {
            p class="lead" id="invitation" {
                strong { (first_name(&referrer.name)) } " " (t.invites)
            }
        } @else {
            p class="lead" { (t.join_title) }
        }
        h1 id="program-name" { (r.program.name) }
        @if let (Some(rule), true) = (&rule, link == Link::Referral) {
            @if rule.referee_points > 0 {
                p id="offer" { (t.you_get) " " (rule.referee_points) " " (t.points) }
            }
            @if rule.trigger == ReferralTrigger::FirstPurchase {
                p class="note" { (t.reward_after_purchase) }
            }
        }
        @if !problems.is_empty() {
            ul class="errors" id="errors" role="alert" {
                @for p in problems { li { (p) } }
            }
        }
        form id="join" method="post" action=(link.path(&r.code)) {
            input type="hidden" name="csrf" value=(csrf);
            label for="name" { (t.name) }
            input type="text" id="name" name="name" required maxlength="100" autocomplete="name" value=(form.name);
            label for="email" { (t.email) }
            input type="email" id="email" name="email" autocomplete="email" value=(form.email);
            label for="phone" { (t.phone) }
            input type="tel" id="phone" name="phone" autocomplete="tel" value=(form.phone);
            p class="note" { (t.contact_hint) }
            label class="consent" {
                input type="checkbox" id="consent" name="consent" value="yes" required checked[form.consent.is_some()];
                span { (t.consent) }
            }
            button type="submit" id="join-submit" { (t.submit) }
        }
    };
    page(status, lang, &theme, &r.program.name, body)
}

/// Opens recorded per client address in the window. Beyond them the page is still shown
/// (many customers may share one address: a shop's Wi-Fi, a carrier's NAT) but the open is
/// not counted, so a script without cookies cannot grow the table or the statistics
/// without bound.
const OPENS_PER_CLIENT: i64 = 60;
const OPEN_WINDOW_MINUTES: i32 = 15;

/// Records an open unless the visitor already opened this link or the client address has
/// had its share of opens in the window. Opens from one address are serialized by an
/// advisory lock on its hash (transaction-scoped), so the count and the insert cannot be
/// overtaken by a concurrent open from the same address. True when recorded.
fn record_open(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    program_id: Uuid,
    referrer_id: Option<Uuid>,
    visitor: &[u8],
    client: &[u8],
) -> QueryResult<bool> {
    use diesel::sql_types::{BigInt, Bytea, Integer, Nullable};
    conn.transaction(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext(encode($2, 'hex')))")
            .bind::<Integer, _>(ADVISORY_LINK_OPENS)
            .bind::<Bytea, _>(client)
            .execute(conn)?;
        let inserted = diesel::sql_query(
            "INSERT INTO link_opens (program_id, referrer_id, visitor, client, merchant_id)
             SELECT $1, $2, $3, $4, $7
              WHERE (SELECT count(*) FROM link_opens
                      WHERE client = $4 AND created_at > now() - make_interval(mins => $5)) < $6
             ON CONFLICT DO NOTHING",
        )
        .bind::<diesel::sql_types::Uuid, _>(program_id)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(referrer_id)
        .bind::<Bytea, _>(visitor)
        .bind::<Bytea, _>(client)
        .bind::<Integer, _>(OPEN_WINDOW_MINUTES)
        .bind::<BigInt, _>(OPENS_PER_CLIENT)
        .bind::<diesel::sql_types::Uuid, _>(merchant_id)
        .execute(conn)?;
        Ok(inserted == 1)
    })
}

/// First key of the advisory locks that serialize link opens per client address.
const ADVISORY_LINK_OPENS: i32 = 0x6c6f; // "lo"

/// Opens a link: counted once per visitor (within the per-address limit), the join form shown.
async fn open(
    req: HttpRequest,
    state: web::Data<AppState>,
    link: Link,
    code: String,
) -> Result<HttpResponse, ApiError> {
    let lang = lang_of(&req);
    let existing = visitor::id_of(&req);
    let visitor_id = existing.clone().unwrap_or_else(visitor::new_id);
    let secret = state.site_secret.clone();
    let app = state.clone();
    let vid = visitor_id.clone();
    let client = crate::client_address::of(&req, state.settings.trust_forwarded);
    let resolved = db::run(&state.pool, move |conn| {
        let Some(r) = resolve(conn, &app, link, &code)? else {
            return Ok(None);
        };
        record_open(
            conn,
            r.program.merchant_id,
            r.program.id,
            r.referrer.as_ref().map(|m| m.id),
            &visitor::open_key(&secret, &vid),
            &visitor::client_key(&secret, &client),
        )?;
        Ok(Some(r))
    })
    .await?;
    let Some(r) = resolved else {
        return Ok(message_page(
            &req,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
        ));
    };
    let csrf = visitor::csrf_token(&state.site_secret, &visitor_id, &link.path(&r.code));
    let mut res = join_page(
        StatusCode::OK,
        lang,
        &r,
        link,
        &csrf,
        &JoinForm::default(),
        &[],
    );
    if existing.is_none() {
        let secure = state.settings.public_url.starts_with("https://");
        let _ = res.add_cookie(&visitor::cookie(&visitor_id, secure));
    }
    Ok(res)
}

/// Submits the join form.
async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    link: Link,
    code: String,
    form: JoinForm,
) -> Result<HttpResponse, ApiError> {
    let lang = lang_of(&req);
    let t = lang.texts();
    let visitor_id = visitor::id_of(&req);
    let Some(normalized) = normalize(&code) else {
        return Ok(message_page(&req, StatusCode::NOT_FOUND, t.not_found));
    };
    if !visitor::csrf_ok(
        &state.site_secret,
        visitor_id.as_deref(),
        &link.path(&normalized),
        &form.csrf,
    ) {
        return Ok(message_page(&req, StatusCode::FORBIDDEN, t.expired_form));
    }
    let client = crate::client_address::of(&req, state.settings.trust_forwarded);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let app = state.clone();
    enum Outcome {
        NotFound,
        Limited,
        Form(Box<Resolved>, Vec<&'static str>, StatusCode),
        Joined(String, Vec<Uuid>),
    }
    let outcome = db::run(&state.pool, move |conn| {
        // Recorded first, then counted with its own record: a burst of concurrent posts
        // cannot all slip under the limit.
        diesel::insert_into(join_attempts::table)
            .values(join_attempts::client.eq(&client))
            .execute(conn)?;
        let since = chrono::Utc::now() - chrono::Duration::minutes(JOIN_WINDOW_MINUTES);
        let recent: i64 = join_attempts::table
            .filter(join_attempts::client.eq(&client))
            .filter(join_attempts::created_at.gt(since))
            .count()
            .get_result(conn)?;
        if recent > JOINS_PER_CLIENT {
            return Ok((Outcome::Limited, form));
        }
        let Some(r) = resolve(conn, &app, link, &code)? else {
            return Ok((Outcome::NotFound, form));
        };
        let mut problems: Vec<&'static str> = Vec::new();
        let (email, phone) = (form.email.trim(), form.phone.trim());
        if email.is_empty() && phone.is_empty() {
            problems.push(t.need_contact);
        }
        if form.consent.is_none() {
            problems.push(t.need_consent);
        }
        let parsed = enrollment::parse(Applicant {
            name: form.name.clone(),
            email: Some(email.to_string()),
            phone: Some(phone.to_string()),
            external_id: None,
            birth_date: None,
        });
        if let Err(fields) = &parsed {
            problems.extend(fields.iter().map(|f| match f.pointer.as_str() {
                "/email" => t.bad_email,
                "/phone" => t.bad_phone,
                _ => t.need_name,
            }));
        }
        let new = match parsed {
            Ok(new) if problems.is_empty() => new,
            _ => {
                let form_again =
                    Outcome::Form(Box::new(r), problems, StatusCode::UNPROCESSABLE_ENTITY);
                return Ok((form_again, form));
            }
        };
        // The form's required checkbox is the consent to the terms: recorded with the
        // member, where it came from included.
        let now = app.clock.now();
        let joined = conn.transaction(|conn| {
            let joined = enrollment::join(
                conn,
                (app.channels, now),
                &r.tenant,
                &r.program,
                new,
                r.referrer.as_ref(),
            )?;
            if let Ok(j) = &joined {
                let origin = consents::Origin {
                    ip: &client,
                    user_agent: user_agent.as_deref(),
                };
                let terms = (consents::Kind::Terms, true);
                consents::record_on_page(conn, &r.tenant, j.member.id, terms, now, &origin)?;
            }
            Ok::<_, ApiError>(joined)
        })?;
        match joined {
            Ok(joined) => {
                let changed = joined.changed_passes();
                Ok((
                    Outcome::Joined(joined.pass.download_token.clone(), changed),
                    form,
                ))
            }
            Err(refusal) => {
                let (text, status) = match refusal {
                    Refusal::SelfReferral(_) => (t.self_referral, StatusCode::UNPROCESSABLE_ENTITY),
                    Refusal::AlreadyMember(_) => (t.already_member, StatusCode::CONFLICT),
                    Refusal::UnknownCode => (t.not_found, StatusCode::NOT_FOUND),
                };
                Ok((Outcome::Form(Box::new(r), vec![text], status), form))
            }
        }
    })
    .await?;
    let (outcome, form) = outcome;
    match outcome {
        Outcome::NotFound => Ok(message_page(&req, StatusCode::NOT_FOUND, t.not_found)),
        Outcome::Limited => {
            let mut res = message_page(&req, StatusCode::TOO_MANY_REQUESTS, t.too_many);
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(JOIN_WINDOW_MINUTES * 60),
            );
            Ok(res)
        }
        Outcome::Form(r, problems, status) => {
            let csrf = visitor::csrf_token(
                &state.site_secret,
                visitor_id.as_deref().unwrap_or_default(),
                &link.path(&r.code),
            );
            Ok(join_page(status, lang, &r, link, &csrf, &form, &problems))
        }
        Outcome::Joined(token, changed) => {
            for pass_id in changed {
                state.pass_cache.evict_pass(pass_id);
            }
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/welcome/{token}")))
                .finish())
        }
    }
}

#[utoipa::path(operation_id = "showReferralPage", tag = "public pages", params(("code" = String, Path, description = "a member's referral code")), responses(
    crate::openapi::UnknownLink, (status = 200, description = "The join page of a referral link (HTML, English or Russian by Accept-Language); sets the visitor cookie", content_type = "text/html")))]
#[get("/r/{code}")]
pub async fn referral_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    open(req, state, Link::Referral, code.into_inner()).await
}

#[utoipa::path(operation_id = "joinByReferral", tag = "public pages", params(("code" = String, Path)), responses(
    crate::openapi::Database, crate::openapi::FormBody, crate::openapi::UnknownLink, crate::openapi::JoinRefusals,
    (status = 303, description = "Joined: on to the welcome page with the wallet buttons")))]
#[post("/r/{code}")]
pub async fn referral_join(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
    form: web::Form<JoinForm>,
) -> Result<HttpResponse, ApiError> {
    submit(
        req,
        state,
        Link::Referral,
        code.into_inner(),
        form.into_inner(),
    )
    .await
}

#[utoipa::path(operation_id = "showJoinPage", tag = "public pages", params(("code" = String, Path, description = "a program's join code")), responses(
    crate::openapi::UnknownLink, (status = 200, description = "The program's own join page (HTML)", content_type = "text/html")))]
#[get("/join/{code}")]
pub async fn program_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    open(req, state, Link::Program, code.into_inner()).await
}

#[utoipa::path(operation_id = "joinProgram", tag = "public pages", params(("code" = String, Path)), responses(
    crate::openapi::Database, crate::openapi::FormBody, crate::openapi::UnknownLink, crate::openapi::JoinRefusals,
    (status = 303, description = "Joined: on to the welcome page")))]
#[post("/join/{code}")]
pub async fn program_join(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
    form: web::Form<JoinForm>,
) -> Result<HttpResponse, ApiError> {
    submit(
        req,
        state,
        Link::Program,
        code.into_inner(),
        form.into_inner(),
    )
    .await
}

/// The link's QR code, as SVG or PNG, for posters and for a friend's phone to scan.
async fn qr_code(
    state: web::Data<AppState>,
    link: Link,
    code: String,
    format: String,
) -> Result<HttpResponse, ApiError> {
    let app = state.clone();
    let resolved = db::run(&state.pool, move |conn| {
        Ok(resolve(conn, &app, link, &code)?.map(|r| r.code))
    })
    .await?;
    let Some(code) = resolved else {
        return Err(ApiError::not_found("no such link"));
    };
    let url = match link {
        Link::Referral => referral_url(&state.settings.public_url, &code),
        Link::Program => join_url(&state.settings.public_url, &code),
    };
    let bad = |e: qr::QrError| ApiError::internal(e.to_string());
    let (content_type, body) = match format.as_str() {
        "qr.svg" => ("image/svg+xml", qr::svg(&url).map_err(bad)?.into_bytes()),
        "qr.png" => ("image/png", qr::png(&url, 8).map_err(bad)?),
        _ => return Err(ApiError::not_found("no such image")),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body))
}

#[utoipa::path(operation_id = "getReferralQrCode", tag = "public pages", params(("code" = String, Path), ("format" = String, Path, description = "`qr.svg` or `qr.png`")), responses(
    crate::openapi::Missing, (status = 200, description = "QR code of the referral link", content_type = "image/svg+xml")))]
#[get("/r/{code}/{format}")]
pub async fn referral_qr(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (code, format) = path.into_inner();
    qr_code(state, Link::Referral, code, format).await
}

#[utoipa::path(operation_id = "getJoinQrCode", tag = "public pages", params(("code" = String, Path), ("format" = String, Path, description = "`qr.svg` or `qr.png`")), responses(
    crate::openapi::Missing, (status = 200, description = "QR code of the program's join link", content_type = "image/svg+xml")))]
#[get("/join/{code}/{format}")]
pub async fn program_qr(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (code, format) = path.into_inner();
    qr_code(state, Link::Program, code, format).await
}

/// After joining: the card, its wallet buttons, the new member's own invitation link.
#[utoipa::path(operation_id = "showWelcomePage", tag = "public pages", params(("token" = String, Path, description = "the pass's download token")), responses(
    crate::openapi::UnknownLink, (status = 200, description = "Welcome page with Add to Apple Wallet / Add to Google Wallet", content_type = "text/html")))]
#[get("/welcome/{token}")]
pub async fn welcome(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let lang = lang_of(&req);
    let t = lang.texts();
    let token = token.into_inner();
    let app = state.clone();
    struct Welcome {
        member: Member,
        program: Program,
        template: Arc<LoadedTemplate>,
        apple: String,
        google: crate::google::save_link::SaveLink,
        referral: Option<(ReferralStatus, i64)>,
    }
    let found = db::run(&state.pool, move |conn| {
        if token.len() > 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let Some((pass, tenant)) = Pass::by_download_token(conn, &token)? else {
            return Ok(None);
        };
        let Some(member_id) = pass.member_id else {
            return Ok(None);
        };
        let member = Member::find(conn, &tenant, member_id)?;
        let program = Program::find(conn, &tenant, member.program_id)?;
        let template = app.templates.load(conn, &tenant, &program.template_id)?;
        let referral = crate::loyalty::referral::of_referee(conn, &tenant, &member)?;
        let google = crate::pass_service::google_save_url(conn, &tenant, &pass, &app)?;
        Ok(Some(Welcome {
            apple: crate::urls::pass_url(&app.settings.public_url, &pass),
            member,
            program,
            template,
            google,
            referral,
        }))
    })
    .await?;
    let Some(w) = found else {
        return Ok(message_page(&req, StatusCode::NOT_FOUND, t.not_found));
    };
    let google = crate::pass_service::finish_save_link(&state, w.google).await;
    let theme = theme(w.program.merchant_id, &w.program.template_id, &w.template);
    let referral_url = referral_url(&state.settings.public_url, &w.member.referral_code);
    let body = html! {
        p class="lead" { (t.welcome) ", " strong id="member-name" { (w.member.name) } }
        h1 { (w.program.name) }
        @if let Some((status, points)) = &w.referral {
            @match status {
                ReferralStatus::Rewarded if *points > 0 => p id="referral-status" { (t.reward_now) " " (points) " " (t.points) },
                ReferralStatus::Pending => p id="referral-status" class="note" { (t.reward_after_purchase) },
                ReferralStatus::Capped => p id="referral-status" class="note" { (t.reward_capped) },
                _ => {}
            }
        }
        p { (t.add_cards) }
        div class="wallet-buttons" {
            a id="add-to-apple-wallet" href=(w.apple) {
                img src=(format!("/public-assets/apple-wallet-{}.svg", lang.code())) alt=(t.add_apple);
            }
            @if let Some(google) = &google {
                a id="add-to-google-wallet" href=(google) {
                    img src=(format!("/public-assets/google-wallet-{}.svg", lang.code())) alt=(t.add_google);
                }
            }
        }
        h2 { (t.your_link) }
        p class="note" { (t.invite_friends) }
        p { a id="own-referral-link" href=(referral_url) { (referral_url) } }
        img class="qr" src=(format!("{}/qr.svg", Link::Referral.path(&w.member.referral_code))) alt=(t.scan_to_join);
    };
    Ok(page(StatusCode::OK, lang, &theme, &w.program.name, body))
}

/// The pages' own stylesheet and wallet buttons.
#[utoipa::path(operation_id = "getPublicAsset", tag = "public pages", params(("file" = String, Path)), responses(
    crate::openapi::Missing, (status = 200, description = "The pages' stylesheet and wallet button artwork")))]
#[get("/public-assets/{file}")]
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (content_type, body): (&str, &'static str) = match file.as_str() {
        "page.css" => ("text/css; charset=utf-8", include_str!("assets/page.css")),
        "apple-wallet-en.svg" => ("image/svg+xml", include_str!("assets/apple-wallet-en.svg")),
        "apple-wallet-ru.svg" => ("image/svg+xml", include_str!("assets/apple-wallet-ru.svg")),
        "google-wallet-en.svg" => ("image/svg+xml", include_str!("assets/google-wallet-en.svg")),
        "google-wallet-ru.svg" => ("image/svg+xml", include_str!("assets/google-wallet-ru.svg")),
        _ => return Err(ApiError::not_found("no such file")),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body))
}

/// A template's image at a stable public URL (page logos, Google Wallet's logo and hero
/// images). The version in the path makes each design's URL change with it.
#[utoipa::path(operation_id = "getTemplateImage", tag = "public pages", params(("merchant" = Uuid, Path), ("template" = String, Path), ("version" = i32, Path), ("file" = String, Path)), responses(
    crate::openapi::Missing, (status = 200, description = "A template image", content_type = "image/png")))]
#[get("/images/{merchant}/{template}/{version}/{file}")]
pub async fn template_image(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String, i32, String)>,
) -> Result<HttpResponse, ApiError> {
    let (merchant, template, _version, file) = path.into_inner();
    if !file.ends_with(".png") || file.len() > 64 {
        return Err(ApiError::not_found("no such image"));
    }
    let data = db::run(&state.pool, move |conn| {
        Ok(crate::models::Template::public_image(
            conn, merchant, &template, &file,
        )?)
    })
    .await?;
    let data = data.ok_or_else(|| ApiError::not_found("no such image"))?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(data))
}
