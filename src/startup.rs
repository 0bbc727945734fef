//! Wiring only: builds the actix-web application from configuration (state, middleware,
//! routes, the OpenAPI document) and starts the workers.

use crate::app::{AppState, Wallets};
use crate::auth::KeyCache;
use crate::clock::Clock;
use crate::configuration::Settings;
use crate::db::DbPool;
use crate::google::callbacks::RootKeyCache;
use crate::metrics::Metrics;
use crate::openapi::ApiDoc;
use crate::pass_cache::PassCache;
use crate::pass_content::TemplateCache;
use crate::problem;
use crate::request_guard::{self, RouteTable};
use crate::routes;
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpMessage, HttpServer};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds the listener and builds the server on real time; nothing runs until
    /// [`Self::run_until_stopped`].
    pub fn build(settings: Settings, pool: DbPool) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, pool, Clock::system())
    }

    /// The same on a clock of the caller's (tests move it instead of sleeping).
    pub fn build_with_clock(
        mut settings: Settings,
        pool: DbPool,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind).map_err(|e| {
            anyhow::anyhow!("cannot listen on PASSFOLD_BIND={}: {e}", settings.bind)
        })?;
        let local = listener.local_addr()?;
        let port = local.port();
        if settings.public_url_from_bind {
            settings.public_url = format!("http://{local}");
        }
        let Wallets {
            identity,
            apns,
            google,
        } = Wallets::load(&settings)?;
        let pass_cache = PassCache::start(settings.database_url.clone(), settings.pass_cache_bytes);
        let google_keys = RootKeyCache::new(&settings.google.callback_keys_url);
        let site_secret = crate::public_pages::visitor::load_secret(&mut *pool.get()?)?;
        let image_decodes = crate::template::images::Decodes::new(settings.limits.image_decodes);
        let channels = crate::pass_events::Channels::new(settings.google.configured());
        let state = web::Data::new(AppState {
            clock,
            image_decodes,
            channels,
            pool,
            settings: Arc::new(settings),
            metrics: Metrics::new(),
            identity,
            templates: TemplateCache::default(),
            pass_cache,
            api_keys: Arc::new(KeyCache::default()),
            apns,
            google_keys,
            google,
            // About 2 kB per link: at most 20 MB.
            save_links: crate::google::save_link::SaveLinks::new(10_000),
            site_secret,
        });
        let server = run(listener, state.clone())?;
        Ok(Self {
            port,
            server,
            state,
        })
    }

    /// Starts the background workers on this application's pool, identity and metrics.
    pub fn start_workers(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        crate::workers::spawn_all(
            self.state.pool.clone(),
            &self.state.settings,
            self.state.apns.clone(),
            self.state.google.clone(),
            self.state.metrics.clone(),
            self.state.clock.clone(),
            shutdown,
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let body_limit = state.settings.body_limit;
    let limits =
        crate::http_limits::HttpLimits::new(&state.settings.limits, state.settings.trust_forwarded);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let max_connections = state.settings.limits.max_connections.div_ceil(workers);
    let server = HttpServer::new(move || {
        let (app, api) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .app_data(state.clone())
            .app_data(web::Data::new(crate::auth::Authenticator {
                pool: state.pool.clone(),
                api_keys: state.api_keys.clone(),
            }))
            .app_data(web::Data::new(problem::ProblemBase(
                state.settings.public_url.clone(),
            )))
            .app_data(
                web::JsonConfig::default()
                    .limit(body_limit)
                    .error_handler(problem::json_error),
            )
            .app_data(web::PayloadConfig::default().limit(body_limit))
            .service(routes::health::healthz)
            .service(routes::health::readyz)
            .service(routes::metrics::metrics)
            .service(
                utoipa_actix_web::scope("/api/v1")
                    .service(routes::api_keys::create)
                    .service(routes::api_keys::list)
                    .service(routes::api_keys::revoke)
                    .service(routes::templates::list)
                    .service(routes::templates::get)
                    .service(routes::templates::create)
                    .service(routes::templates::update)
                    .service(routes::template_versions::get_draft)
                    .service(routes::template_versions::save_draft)
                    .service(routes::template_versions::discard_draft)
                    .service(routes::template_versions::publish)
                    .service(routes::template_versions::list_versions)
                    .service(routes::template_versions::restore)
                    .service(routes::template_versions::reach)
                    .service(routes::templates::put_image)
                    .service(routes::templates::preview_draft)
                    .service(routes::programs::create)
                    .service(routes::programs::list)
                    .service(routes::programs::get)
                    .service(routes::programs::update)
                    .service(routes::programs::installs)
                    .service(routes::segments::sizes)
                    .service(routes::segments::recompute)
                    .service(routes::analytics::get)
                    .service(routes::receipts::create)
                    .service(routes::surveys::set)
                    .service(routes::surveys::comments)
                    .service(routes::campaigns::create)
                    .service(routes::campaigns::list)
                    .service(routes::campaigns::get)
                    .service(routes::campaigns::cancel)
                    .service(routes::automations::create)
                    .service(routes::automations::list)
                    .service(routes::automations::get)
                    .service(routes::automations::change)
                    .service(routes::dashboard::get)
                    .service(routes::members::enroll)
                    .service(routes::members::list)
                    .service(routes::members::find)
                    .service(routes::members::get)
                    .service(routes::members::change)
                    .service(routes::privacy::export)
                    .service(routes::privacy::erase)
                    .service(routes::gift_cards::issue)
                    .service(routes::gift_cards::list)
                    .service(routes::activities::of_gift_cards)
                    .service(routes::activities::of_program)
                    .service(routes::exports::members)
                    .service(routes::exports::gift_cards)
                    .service(routes::exports::program_activities)
                    .service(routes::exports::gift_card_activities)
                    .service(routes::gift_cards::get)
                    .service(routes::gift_cards::redeem)
                    .service(routes::gift_cards::load)
                    .service(routes::gift_cards::refund)
                    .service(routes::gift_cards::adjust)
                    .service(routes::gift_cards::deactivate)
                    .service(routes::gift_cards::activities)
                    .service(routes::gift_cards::verify_ledger)
                    .service(routes::members::purchase)
                    .service(routes::members::adjust_points)
                    .service(routes::points::redeem)
                    .service(routes::points::quote)
                    .service(routes::points::refund_purchase)
                    .service(routes::points::activities)
                    .service(routes::messages::to_member)
                    .service(routes::messages::to_gift_card)
                    .service(routes::referrals::of_member)
                    .service(routes::referrals::stats)
                    .service(routes::public::balance)
                    .service(routes::webhooks::create)
                    .service(routes::webhooks::list)
                    .service(routes::webhooks::get)
                    .service(routes::webhooks::update)
                    .service(routes::webhooks::remove)
                    .service(routes::webhooks::rotate)
                    .service(routes::webhooks::deliveries)
                    .service(routes::webhooks::resend)
                    .service(routes::webhooks::replay)
                    .service(routes::imports::start)
                    .service(routes::imports::list)
                    .service(routes::imports::get),
            )
            .service(routes::passes::download)
            .service(routes::passes::google_save)
            .service(crate::apple::webservice::register)
            .service(crate::apple::webservice::unregister)
            .service(crate::apple::webservice::changed)
            .service(crate::apple::webservice::latest)
            .service(crate::apple::webservice::log)
            .service(routes::google_callbacks::callback)
            .service(crate::public_pages::referral_page)
            .service(crate::public_pages::referral_join)
            .service(crate::public_pages::referral_qr)
            .service(crate::public_pages::program_page)
            .service(crate::public_pages::program_join)
            .service(crate::public_pages::program_qr)
            .service(crate::public_pages::welcome)
            .service(crate::public_pages::survey::show)
            .service(crate::public_pages::survey::answer)
            .service(crate::public_pages::asset)
            .service(crate::public_pages::template_image)
            .service(routes::problems::page)
            .split_for_parts();
        let metrics = state.metrics.clone();
        let mut routes = RouteTable::from_openapi(&api);
        routes.add("/openapi.json", "GET");
        routes.add("/docs", "GET");
        routes.add("/docs/{_:.*}", "GET");
        app.app_data(web::Data::new(routes))
            .default_service(web::to(request_guard::no_route))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api))
            .service(crate::console::scope())
            .service(web::redirect("/docs", "/docs/"))
            // Inside the error handlers, so its problems get their absolute `type` too.
            .wrap(from_fn(request_guard::guard))
            .wrap(ErrorHandlers::new().default_handler(problem::normalize_error_responses))
            .wrap(limits.clone())
            .wrap_fn(move |req, srv| {
                let started = Instant::now();
                let request_id = req.extensions().get::<RequestId>().copied();
                let metrics = metrics.clone();
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    let route = res
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_string());
                    metrics.observe_request(
                        res.request().method().as_str(),
                        &route,
                        res.status().as_u16(),
                        started.elapsed().as_secs_f64(),
                    );
                    if let Some(id) = request_id {
                        if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
                            res.headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), value);
                        }
                    }
                    Ok(res)
                }
            })
            .wrap(TracingLogger::default())
    })
    // Every connection bound deliberately: headers within 5 s, 5 s idle between requests,
    // 1 s to close, PASSFOLD_MAX_CONNECTIONS across the workers (kept below `ulimit -n`); the
    // body's bound is HttpLimits'.
    .workers(workers)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .keep_alive(std::time::Duration::from_secs(5))
    .client_disconnect_timeout(crate::http_limits::CLOSE_LINGER)
    .max_connections(max_connections)
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
