//! The states and kinds the database keeps as checked text (`CHECK (state IN (...))`), as Rust
//! enums: diesel reads and writes them as text, serde and the OpenAPI document show the same
//! words, and a word the database does not allow cannot be written from Rust.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

/// One enum over a text column: variants and the exact words stored for them. (`$word` is a
/// `tt`: utoipa does not read a `literal` fragment in `serde(rename)`, and would show the
/// variants' Rust names.)
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let word = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                $name::parse(&word).ok_or_else(|| {
                    format!("{word:?} is not a {}", stringify!($name)).into()
                })
            }
        }
    };
}

text_enum! {
    /// What a key may do: `admin` everything, `pos` only what a till does.
    Scope {
        Admin = "admin",
        Pos = "pos",
    }
}

text_enum! {
    /// A gift card's life: issued but not yet sold, usable, or switched off for good.
    CardState {
        Pending = "pending",
        Active = "active",
        Deactivated = "deactivated",
    }
}

text_enum! {
    /// Where a pass change is delivered (one outbox row per channel).
    Channel {
        /// Apple Wallet: an APNs push to every registered device.
        Apple = "apple",
        /// Google Wallet: the object patched over REST.
        Google = "google",
        /// A merchant's webhook endpoint: a signed message POSTed to it.
        Webhook = "webhook",
    }
}

text_enum! {
    /// What became of a referral.
    ReferralStatus {
        /// Waiting for the friend's first qualifying purchase.
        Pending = "pending",
        Rewarded = "rewarded",
        /// The referrer had reached the monthly cap: nobody earned.
        Capped = "capped",
        /// The program pays no referral rewards.
        NoRule = "no_rule",
    }
}

text_enum! {
    /// A gift card's ledger entry.
    GiftCardActivityType {
        Activate = "activate",
        Load = "load",
        Redeem = "redeem",
        Refund = "refund",
        Adjust = "adjust",
        Deactivate = "deactivate",
    }
}

text_enum! {
    /// A member's points ledger entry.
    PointActivityType {
        Welcome = "welcome",
        /// Points a purchase earned.
        Earn = "earn",
        /// Points paid at the till.
        Spend = "spend",
        /// A lot's points that ran out of time.
        Expire = "expire",
        /// A return: points its purchase earned taken back, points paid on it given back.
        Refund = "refund",
        Adjust = "adjust",
        Referral = "referral",
        Birthday = "birthday",
        Campaign = "campaign",
        Import = "import",
        /// A tier changed without points moving (the program's thresholds changed).
        Tier = "tier",
    }
}

text_enum! {
    /// What a template issues.
    TemplateKind {
        Loyalty = "loyalty",
        GiftCard = "gift_card",
    }
}

text_enum! {
    /// What a staff member may do in the console: `owner` everything (staff, audit log,
    /// keys), `designer` templates only, `cashier` look up members and cards.
    Role {
        Owner = "owner",
        Designer = "designer",
        Cashier = "cashier",
    }
}

text_enum! {
    /// A staff member's language in the console.
    Language {
        En = "en",
        Ru = "ru",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_match_serde() -> Result<(), serde_json::Error> {
        for state in CardState::ALL {
            assert_eq!(CardState::parse(state.as_str()), Some(*state));
            assert_eq!(serde_json::to_string(state)?, format!("\"{state}\""));
        }
        assert_eq!(ReferralStatus::NoRule.as_str(), "no_rule");
        assert_eq!(
            TemplateKind::parse("gift_card"),
            Some(TemplateKind::GiftCard)
        );
        assert_eq!(Channel::parse("email"), None);
        Ok(())
    }

    #[test]
    fn the_openapi_schema_shows_the_words() -> Result<(), serde_json::Error> {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(CardState::schema())?;
        assert_eq!(
            schema["enum"],
            serde_json::json!(["pending", "active", "deactivated"])
        );
        Ok(())
    }
}
