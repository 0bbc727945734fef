//! The one pagination scheme of every list answer: `limit`, `cursor` and `next_cursor`.
//!
//! A cursor is the last item's sort key and id, as opaque base64url text. Whatever a client
//! sends back is decoded and its key parsed as the list's key type (text, instant or
//! sequence number) before any query: a cursor that does not decode, or holds a key of
//! another kind, is a 422 naming `cursor`, never a database error.

use crate::problem::FieldProblem;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// How many items a list answer holds: 50 unless asked, at most 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(i64);

impl PageLimit {
    pub const DEFAULT: i64 = 50;
    pub const MAX: i64 = 200;

    /// Read as text, so that a limit beyond any integer is refused like one beyond 200.
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        Self::parse_within(text, Self::DEFAULT, Self::MAX)
    }

    /// With a list's own default and maximum.
    pub fn parse_within(text: Option<&str>, default: i64, max: i64) -> Result<Self, String> {
        let Some(text) = text else {
            return Ok(Self(default));
        };
        match text.trim().parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(Self(n)),
            _ => Err(format!("an integer from 1 to {max}")),
        }
    }

    /// A page size chosen by the service itself (exports).
    pub const fn fixed(n: i64) -> Self {
        Self(n)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Where a page ends: the last item's sort key and id. Clients get it as opaque base64url
/// text; anything that does not decode to one is refused, never passed to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub key: String,
    pub id: Uuid,
}

const REFUSED: &str = "not a cursor this service handed out";

impl PageCursor {
    /// Sort keys are names, emails, phone digits, card numbers, instants or numbers: 100
    /// characters at most as stored, 400 bytes in UTF-8.
    const MAX_KEY_BYTES: usize = 1024;

    pub fn encode(&self) -> String {
        let mut bytes = self.id.as_bytes().to_vec();
        bytes.extend_from_slice(self.key.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let refused = || REFUSED.to_string();
        if text.len() > (Self::MAX_KEY_BYTES + 16) * 4 / 3 + 4 {
            return Err(refused());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| refused())?;
        if bytes.len() < 16 {
            return Err(refused());
        }
        let (id, key) = bytes.split_at(16);
        let id = Uuid::from_slice(id).map_err(|_| refused())?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| refused())?;
        // PostgreSQL text holds no NUL: such a key could only fail in the database.
        if key.contains('\0') {
            return Err(refused());
        }
        Ok(Self { key, id })
    }

    /// The cursor of an item at `key`.
    pub fn at<K: CursorKey>(key: &K, id: Uuid) -> Self {
        Self {
            key: key.to_key(),
            id,
        }
    }

    /// The key as the list's key type.
    pub fn typed<K: CursorKey>(&self) -> Result<(K, Uuid), String> {
        K::from_key(&self.key)
            .map(|k| (k, self.id))
            .ok_or_else(|| REFUSED.to_string())
    }
}

/// A list's sort key as a cursor holds it.
pub trait CursorKey: Sized {
    fn to_key(&self) -> String;
    fn from_key(text: &str) -> Option<Self>;
}

impl CursorKey for String {
    fn to_key(&self) -> String {
        self.clone()
    }
    fn from_key(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
}

/// Instants with microseconds, PostgreSQL's resolution: the next page starts exactly after.
impl CursorKey for DateTime<Utc> {
    fn to_key(&self) -> String {
        self.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
    fn from_key(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Sequence numbers (ledger `seq`, delivery attempt ids).
impl CursorKey for i64 {
    fn to_key(&self) -> String {
        self.to_string()
    }
    fn from_key(text: &str) -> Option<Self> {
        // Digits only: "+1" or " 1" were never handed out.
        text.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-')
            .then(|| text.parse().ok())
            .flatten()
    }
}

/// A page of items and the cursor of the next page (null on the last).
pub type Page<T> = (Vec<T>, Option<String>);

/// A list request's `limit` and `cursor`, parsed for a list ordered by `K` then id.
#[derive(Debug, Clone, PartialEq)]
pub struct Paging<K> {
    pub limit: PageLimit,
    /// Where the previous page ended.
    pub after: Option<(K, Uuid)>,
}

impl<K: CursorKey> Paging<K> {
    /// `limit` and `cursor` of a request; what is wrong with them is added to `problems`.
    pub fn parse(
        limit: Option<&str>,
        cursor: Option<&str>,
        problems: &mut Vec<FieldProblem>,
    ) -> Option<Self> {
        Self::parse_within(
            limit,
            cursor,
            (PageLimit::DEFAULT, PageLimit::MAX),
            problems,
        )
    }

    /// With a list's own (default, maximum) page size.
    pub fn parse_within(
        limit: Option<&str>,
        cursor: Option<&str>,
        (default, max): (i64, i64),
        problems: &mut Vec<FieldProblem>,
    ) -> Option<Self> {
        let limit = PageLimit::parse_within(limit, default, max)
            .map_err(|e| problems.push(FieldProblem::new("/limit", e)))
            .ok();
        let after = cursor
            .map(|c| PageCursor::decode(c).and_then(|c| c.typed::<K>()))
            .transpose()
            .map_err(|e| problems.push(FieldProblem::new("/cursor", e)))
            .ok();
        Some(Self {
            limit: limit?,
            after: after?,
        })
    }

    /// The first page of `limit` items.
    pub fn first(limit: PageLimit) -> Self {
        Self { limit, after: None }
    }

    /// How many rows to fetch: one more than a page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit.get() + 1
    }

    /// `rows` (fetched with [`Paging::fetch`]) cut to the page, and the cursor of the next
    /// page when there is one; `position` is an item's sort key and id.
    pub fn finish<T>(&self, mut rows: Vec<T>, position: impl Fn(&T) -> (K, Uuid)) -> Page<T> {
        let more = rows.len() as i64 > self.limit.get();
        rows.truncate(self.limit.get() as usize);
        let next = more.then(|| rows.last()).flatten().map(|last| {
            let (key, id) = position(last);
            PageCursor::at(&key, id).encode()
        });
        (rows, next)
    }

    /// The same list continued after `next` (a cursor [`Paging::finish`] made).
    pub fn continued(&self, next: &str) -> Option<Self> {
        let after = PageCursor::decode(next).ok()?.typed::<K>().ok()?;
        Some(Self {
            limit: self.limit,
            after: Some(after),
        })
    }
}

/// An instant given as a query parameter (`created_since`, `since`...): RFC 3339.
pub fn instant(
    pointer: &str,
    text: Option<&str>,
    problems: &mut Vec<FieldProblem>,
) -> Option<Option<DateTime<Utc>>> {
    match text.map(<DateTime<Utc> as CursorKey>::from_key) {
        None => Some(None),
        Some(Some(t)) => Some(Some(t)),
        Some(None) => {
            problems.push(FieldProblem::new(
                pointer,
                "an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_pages() {
        assert_eq!(PageLimit::parse(None).map(PageLimit::get), Ok(50));
        assert_eq!(PageLimit::parse(Some("200")).map(PageLimit::get), Ok(200));
        for bad in ["0", "201", "-1", "1e3", "99999999999999999999999", ""] {
            assert!(PageLimit::parse(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            PageLimit::parse_within(None, 1000, 1000).map(PageLimit::get),
            Ok(1000)
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let cursor = PageCursor {
            key: "иван петров".into(),
            id: Uuid::new_v4(),
        };
        assert_eq!(PageCursor::decode(&cursor.encode()), Ok(cursor.clone()));
        let mut nul = cursor.id.as_bytes().to_vec();
        nul.extend_from_slice(b"a\0b");
        let mut bad_utf8 = cursor.id.as_bytes().to_vec();
        bad_utf8.push(0xff);
        for bad in [
            "".to_string(),
            "not base64!".into(),
            URL_SAFE_NO_PAD.encode([1u8; 15]),
            URL_SAFE_NO_PAD.encode(nul),
            URL_SAFE_NO_PAD.encode(bad_utf8),
            "A".repeat(5000),
        ] {
            assert!(PageCursor::decode(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_keys_round_trip_and_refuse_other_kinds() {
        let id = Uuid::new_v4();
        let at: DateTime<Utc> = "2026-12-01T10:00:00.123456Z".parse().unwrap();
        let text = PageCursor::at(&at, id).encode();
        let mut problems = Vec::new();
        let paging = Paging::<DateTime<Utc>>::parse(None, Some(&text), &mut problems).unwrap();
        assert_eq!(paging.after, Some((at, id)));
        // A name cursor is no instant, an instant no sequence number.
        let name = PageCursor::at(&"Anna".to_string(), id).encode();
        assert!(Paging::<DateTime<Utc>>::parse(None, Some(&name), &mut problems).is_none());
        assert!(Paging::<i64>::parse(None, Some(&text), &mut problems).is_none());
        for bad in ["+1", " 1", "1e3", "99999999999999999999"] {
            assert_eq!(i64::from_key(bad), None, "{bad}");
        }
        assert_eq!(i64::from_key("-5"), Some(-5));
        assert_eq!(problems.len(), 2);
        assert!(problems.iter().all(|p| p.pointer == "/cursor"));
    }

    #[test]
    fn pages_are_cut_with_the_next_cursor() {
        let paging = Paging::<i64>::first(PageLimit::fixed(2));
        let ids: Vec<(i64, Uuid)> = (1..=3).map(|n| (n, Uuid::new_v4())).collect();
        let (page, next) = paging.finish(ids.clone(), |r| *r);
        assert_eq!(page, ids[..2]);
        let next = paging.continued(&next.unwrap()).unwrap();
        assert_eq!(next.after, Some(ids[1]));
        let (page, none) = paging.finish(ids[..2].to_vec(), |r| *r);
        assert_eq!((page.len(), none), (2, None));
    }
}
