//! Cursor pagination for the console's lists: cursors are opaque in the URL (a list's
//! last item), and a page links to the next one and back to the first.

use super::i18n::Texts;
use crate::domain::PageCursor;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use uuid::Uuid;

/// Rows per page of every console list.
pub const PAGE: i64 = 25;

/// A cursor for lists ordered by (time, id).
pub fn time_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    PageCursor::at(&at, id).encode()
}

/// The (time, id) a cursor holds; `None` for anything this service did not hand out.
pub fn parse_time_cursor(text: &str) -> Option<(DateTime<Utc>, Uuid)> {
    PageCursor::decode(text).ok()?.typed().ok()
}

/// `rows` cut to a page: whether more follow (one more than a page was asked for).
pub fn cut<T>(mut rows: Vec<T>) -> (Vec<T>, bool) {
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    (rows, more)
}

/// "Next page" (when there is one) and "First page" (when this is not it).
pub fn pager(t: &Texts, id: &str, next: Option<String>, first: Option<String>) -> Markup {
    html! {
        @if next.is_some() || first.is_some() {
            nav class="pager" id=(id) aria-label=(t.pages().next_page) {
                @if let Some(href) = first { a href=(href) class="first-page" { (t.pages().first_page) } }
                @if let Some(href) = next { a href=(href) class="next-page" rel="next" { (t.pages().next_page) } }
            }
        }
    }
}

/// A query string value, escaped.
pub fn q(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
