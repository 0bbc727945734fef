//! Lifecycle stages, judged from a member's purchases (those not returned in full) as of
//! an instant. A member with a rhythm (3 purchases or more) is judged by it: cooling after
//! 1.5 times their median interval without a purchase, lapsed after 3 times (each at
//! least a day); others by the program's `cooling_days` and `lapsed_days`. The rules in
//! full are in docs/SEGMENTS.md; `segments::COMPUTE` applies them in SQL.

use serde::{Deserialize, Serialize};

/// Days without a purchase after which a member without a rhythm is cooling.
pub const DEFAULT_COOLING_DAYS: i64 = 60;
/// ... and lapsed.
pub const DEFAULT_LAPSED_DAYS: i64 = 180;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// No purchase (or every purchase returned in full).
    Registered,
    /// Exactly one purchase, recently.
    FirstPurchase,
    /// Two or more, recently.
    Repeat,
    Cooling,
    Lapsed,
    /// Came back: the last purchase followed a silence longer than the lapse threshold.
    Reactivated,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Registered,
        Stage::FirstPurchase,
        Stage::Repeat,
        Stage::Cooling,
        Stage::Lapsed,
        Stage::Reactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Registered => "registered",
            Stage::FirstPurchase => "first_purchase",
            Stage::Repeat => "repeat",
            Stage::Cooling => "cooling",
            Stage::Lapsed => "lapsed",
            Stage::Reactivated => "reactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|g| g.as_str() == s)
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Stage::Registered => "Registered, no purchase",
            Stage::FirstPurchase => "First purchase",
            Stage::Repeat => "Repeat customer",
            Stage::Cooling => "Cooling",
            Stage::Lapsed => "Lapsed",
            Stage::Reactivated => "Reactivated",
        }
    }

    pub fn name_ru(self) -> &'static str {
        match self {
            Stage::Registered => "Зарегистрирован, без покупок",
            Stage::FirstPurchase => "Первая покупка",
            Stage::Repeat => "Повторные покупки",
            Stage::Cooling => "Остывает",
            Stage::Lapsed => "Ушёл",
            Stage::Reactivated => "Вернулся",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn names_round_trip() {
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
            assert!(!s.name_ru().is_empty() && !s.name_en().is_empty());
        }
        assert_eq!(Stage::parse("churned"), None);
    }
}
