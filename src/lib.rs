//! passfold: Apple Wallet and Google Wallet loyalty cards and gift cards, issued and kept live.
//!
//! The layout follows zero2prod: `configuration` reads the environment, `startup` wires the
//! actix-web application, `routes/` holds one file per resource, `domain/` holds types that
//! parse rather than validate, and the database layer is diesel's generated `schema` with
//! `models/` beside it.

pub mod analytics;
pub mod app;
pub mod apple;
pub mod auth;
pub mod campaigns;
pub mod cli;
pub mod client_address;
pub mod clock;
pub mod configuration;
pub mod console;
pub mod db;
pub mod domain;
pub mod exports;
pub mod giftcard;
pub mod google;
pub mod http_limits;
pub mod idempotency;
pub mod imports;
pub mod jobs;
pub mod loyalty;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod negotiation;
pub mod openapi;
pub mod outbox;
pub mod pass_cache;
pub mod pass_content;
pub mod pass_events;
pub mod pass_service;
pub mod privacy;
pub mod problem;
pub mod public_pages;
pub mod request_guard;
pub mod routes;
pub mod schema;
pub mod segments;
pub mod shutdown;
pub mod staff;
pub mod startup;
pub mod telemetry;
pub mod template;
pub mod urls;
pub mod webhooks;
pub mod workers;
