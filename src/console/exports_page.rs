//! The console's CSV downloads of the members and the gift cards: the same answer as
//! `GET /api/v1/exports/members.csv` and `/gift-cards.csv`, by the same code
//! (`routes::exports::members_csv`, `gift_cards_csv`: the same query, the same columns,
//! streamed), for the signed-in merchant. Whoever may see the list may download it.

use super::error::PageError;
use super::insights_page::failed;
use super::session::{Section, StaffSession};
use crate::app::AppState;
use crate::routes::exports::{self, ProgramParam};
use crate::routes::gift_cards::CardListQuery;
use crate::routes::members::ListQuery;
use actix_web::{web, HttpResponse};

pub async fn members(
    session: StaffSession,
    state: web::Data<AppState>,
    program: web::Query<ProgramParam>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Members)?;
    exports::members_csv(&state, session.tenant, &program, &query)
        .await
        .map_err(|e| failed(&session, e))
}

pub async fn gift_cards(
    session: StaffSession,
    state: web::Data<AppState>,
    query: web::Query<CardListQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::GiftCards)?;
    exports::gift_cards_csv(&state, session.tenant, &query).map_err(|e| failed(&session, e))
}
