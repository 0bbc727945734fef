//! CSV exports, streamed: a list's keyset pages, one at a time, each written as CSV and
//! sent before the next is read. The next page is read only when the client has taken the
//! previous one (the body is pulled), so memory stays one page however long the list is,
//! and no transaction stays open between pages (docs/INTEGRATIONS.md).

use crate::db::DbPool;
use crate::domain::cursor::{CursorKey, PageLimit, Paging};
use crate::problem::ApiError;
use actix_web::http::header;
use actix_web::HttpResponse;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use diesel::PgConnection;
use std::sync::Arc;

/// Rows read per page of an export.
pub const PAGE: PageLimit = PageLimit::fixed(1000);

/// One CSV page being written.
pub struct Sheet {
    out: csv::Writer<Vec<u8>>,
}

impl Sheet {
    fn new() -> Self {
        Self {
            out: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::with_capacity(256 * PAGE.get() as usize)),
        }
    }

    /// A text cell. One that a spreadsheet would take for a formula (starting with `=`,
    /// `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, as OWASP advises
    /// against CSV injection: a phone `+7...` is written `'+7...`.
    pub fn text(&mut self, value: &str) -> &mut Self {
        let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let field = if risky {
            format!("'{value}")
        } else {
            value.to_string()
        };
        self.write(field.as_bytes())
    }

    pub fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        self.text(value.unwrap_or(""))
    }

    /// A number the service computed: written as it is (a negative amount stays a number).
    pub fn number(&mut self, value: i64) -> &mut Self {
        self.write(value.to_string().as_bytes())
    }

    pub fn opt_number(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            Some(v) => self.number(v),
            None => self.write(b""),
        }
    }

    /// An id, an instant or a link the service made: never a formula.
    pub fn plain(&mut self, value: impl std::fmt::Display) -> &mut Self {
        self.write(value.to_string().as_bytes())
    }

    pub fn time(&mut self, at: DateTime<Utc>) -> &mut Self {
        self.write(at.to_rfc3339_opts(SecondsFormat::Micros, true).as_bytes())
    }

    /// Ends the row.
    pub fn end(&mut self) {
        // An empty record after the fields is how the csv crate ends a row.
        let _ = self.out.write_record(None::<&[u8]>);
    }

    fn write(&mut self, field: &[u8]) -> &mut Self {
        // Writing into memory cannot fail.
        let _ = self.out.write_field(field);
        self
    }

    fn into_bytes(self) -> Bytes {
        Bytes::from(self.out.into_inner().unwrap_or_default())
    }
}

/// Writes one page (from `paging`) into the sheet; answers the next page's cursor.
pub trait PageWriter<K>: Send + Sync + 'static {
    fn write_page(
        &self,
        conn: &mut PgConnection,
        paging: &Paging<K>,
        sheet: &mut Sheet,
    ) -> Result<Option<String>, ApiError>;
}

impl<K, F> PageWriter<K> for F
where
    F: Fn(&mut PgConnection, &Paging<K>, &mut Sheet) -> Result<Option<String>, ApiError>
        + Send
        + Sync
        + 'static,
{
    fn write_page(
        &self,
        conn: &mut PgConnection,
        paging: &Paging<K>,
        sheet: &mut Sheet,
    ) -> Result<Option<String>, ApiError> {
        self(conn, paging, sheet)
    }
}

/// The streamed CSV answer: `header`, then every page from `first` on, as `writer` writes
/// them. A failure after the first byte cannot change the status: the connection is cut
/// (the chunked body never ends), so a client cannot take a partial file for a whole one.
pub fn csv_response<K>(
    pool: DbPool,
    filename: &str,
    header: &'static [&'static str],
    first: Paging<K>,
    writer: impl PageWriter<K>,
) -> HttpResponse
where
    K: CursorKey + Clone + Send + 'static,
{
    let writer = Arc::new(writer);
    let state = (Some(first), true);
    let body = futures_util::stream::unfold(state, move |(paging, first_page)| {
        let (pool, writer) = (pool.clone(), writer.clone());
        async move {
            let paging = paging?;
            let page = crate::db::run(&pool, move |conn| {
                let mut sheet = Sheet::new();
                if first_page {
                    for name in header {
                        sheet.plain(name);
                    }
                    sheet.end();
                }
                let next = writer.write_page(conn, &paging, &mut sheet)?;
                let next = next.and_then(|n| paging.continued(&n));
                Ok((sheet.into_bytes(), next))
            })
            .await;
            match page {
                Ok((bytes, next)) => Some((Ok(bytes), (next, false))),
                Err(e) => {
                    tracing::error!(error = %e, "an export failed mid-stream; the connection is cut");
                    Some((Err(std::io::Error::other(e.to_string())), (None, false)))
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quoting_is_csv() {
        let mut sheet = Sheet::new();
        sheet
            .text("=HYPERLINK(\"x\")")
            .text("+7 912")
            .text("-1")
            .text("@SUM(A1)")
            .text("Anna, \"Ann\"")
            .number(-50)
            .opt_number(None);
        sheet.end();
        let text = String::from_utf8(sheet.into_bytes().to_vec()).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        let cells: Vec<&str> = row.iter().collect();
        assert_eq!(
            cells,
            [
                "'=HYPERLINK(\"x\")",
                "'+7 912",
                "'-1",
                "'@SUM(A1)",
                "Anna, \"Ann\"",
                "-50",
                ""
            ]
        );
    }
}
