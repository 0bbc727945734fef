//! What the card tells its holder when the program does something to them unasked: a
//! birthday gift, a new tier. Stored as the pass's message (the Apple pass's back field
//! with a change message, a Google Wallet message) and delivered with reason `message`, in
//! the caller's transaction, the way `jobs::reminders` sends expiry reminders. The language
//! is the card template's: English when it has English texts, else Russian when it has
//! those.

use crate::pass_events::Channels;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use uuid::Uuid;

/// Something to tell a member.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Birthday points granted.
    Birthday { points: i64 },
    /// The member's tier changed (up at once, or down when a period was judged).
    Tier { name: String },
    /// A campaign's message: (header, body) per language, English the fallback, then the
    /// first language given.
    Campaign {
        texts: std::collections::BTreeMap<String, (String, String)>,
    },
}

/// "балл", "балла" or "баллов" for `n` (by the last two digits).
fn ru_points(n: i64) -> &'static str {
    let (n10, n100) = (n.rem_euclid(10), n.rem_euclid(100));
    if n10 == 1 && n100 != 11 {
        "балл"
    } else if (2..=4).contains(&n10) && !(12..=14).contains(&n100) {
        "балла"
    } else {
        "баллов"
    }
}

/// The notice's header and body in `language` (English unless Russian): every text of
/// this module, in both languages, in one place.
pub fn text(language: &str, notice: &Notice) -> (String, String) {
    let ru = language == "ru";
    match notice {
        Notice::Birthday { points } if ru => (
            "С днём рождения!".into(),
            format!(
                "С днём рождения! Вам начислено {points} {}",
                ru_points(*points)
            ),
        ),
        Notice::Birthday { points } => (
            "Happy birthday!".into(),
            if *points == 1 {
                "Happy birthday! 1 point is yours".into()
            } else {
                format!("Happy birthday! {points} points are yours")
            },
        ),
        Notice::Tier { name } if ru => {
            ("Новый уровень".into(), format!("Ваш уровень теперь {name}"))
        }
        Notice::Tier { name } => ("New tier".into(), format!("Your tier is now {name}")),
        Notice::Campaign { texts } => texts
            .get(language)
            .or_else(|| texts.get("en"))
            .or_else(|| texts.values().next())
            .cloned()
            .unwrap_or_default(),
    }
}

#[derive(QueryableByName)]
struct PassLanguage {
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    language: String,
}

/// Puts each `(merchant, member, notice)` on the member's pass as its message at `at` and
/// queues the change (reason `message`); returns the passes changed. Two statements
/// whatever the number of members.
pub fn post(
    conn: &mut PgConnection,
    channels: Channels,
    notices: &[(Uuid, Uuid, Notice)],
    at: DateTime<Utc>,
) -> QueryResult<Vec<Uuid>> {
    if notices.is_empty() {
        return Ok(Vec::new());
    }
    let merchants: Vec<Uuid> = notices.iter().map(|n| n.0).collect();
    let members: Vec<Uuid> = notices.iter().map(|n| n.1).collect();
    let languages: std::collections::HashMap<Uuid, String> = diesel::sql_query(
        // A subquery per member, which PostgreSQL runs as a lookup by key: as a join, a
        // batch of thousands read every pass of the table into a hash.
        "SELECT c.member_id,
                coalesce((SELECT CASE WHEN t.document -> 'localizations' ? 'en' THEN 'en'
                                      WHEN t.document -> 'localizations' ? 'ru' THEN 'ru'
                                      ELSE 'en' END
                            FROM passes p
                            LEFT JOIN templates t
                                   ON t.merchant_id = p.merchant_id AND t.id = p.template_id
                           WHERE p.merchant_id = c.merchant_id AND p.member_id = c.member_id),
                         'en') AS language
           FROM unnest($1::uuid[], $2::uuid[]) AS c (merchant_id, member_id)",
    )
    .bind::<Array<SqlUuid>, _>(&merchants)
    .bind::<Array<SqlUuid>, _>(&members)
    .load::<PassLanguage>(conn)?
    .into_iter()
    .map(|p| (p.member_id, p.language))
    .collect();
    let mut messages = crate::pass_events::Messages::default();
    for (merchant, member, notice) in notices {
        let language = languages.get(member).map_or("en", String::as_str);
        let (header, body) = text(language, notice);
        messages.push(*merchant, *member, header, body);
    }
    crate::pass_events::messages_posted(conn, &messages, at, "message", channels.all())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_in_both_languages() {
        let birthday = |points| Notice::Birthday { points };
        assert_eq!(
            text("en", &birthday(100)).1,
            "Happy birthday! 100 points are yours"
        );
        assert_eq!(
            text("en", &birthday(1)).1,
            "Happy birthday! 1 point is yours"
        );
        assert_eq!(
            text("ru", &birthday(100)).1,
            "С днём рождения! Вам начислено 100 баллов"
        );
        assert_eq!(
            text("ru", &birthday(21)).1,
            "С днём рождения! Вам начислено 21 балл"
        );
        assert_eq!(
            text("ru", &birthday(3)).1,
            "С днём рождения! Вам начислено 3 балла"
        );
        let silver = Notice::Tier {
            name: "Silver".into(),
        };
        assert_eq!(text("en", &silver).1, "Your tier is now Silver");
        assert_eq!(text("ru", &silver).1, "Ваш уровень теперь Silver");
        assert_eq!(text("de", &silver).0, "New tier");
        let campaign = Notice::Campaign {
            texts: [
                (
                    "ru".to_string(),
                    ("Привет".to_string(), "Скидка".to_string()),
                ),
                (
                    "de".to_string(),
                    ("Hallo".to_string(), "Rabatt".to_string()),
                ),
            ]
            .into(),
        };
        assert_eq!(text("ru", &campaign).1, "Скидка");
        // No English: the first language given.
        assert_eq!(text("en", &campaign).1, "Rabatt");
    }
}
