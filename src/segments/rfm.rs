//! RFM: recency, frequency and money of each member's purchases in the program's window,
//! each scored 1 to 3 (3 best) against the program's cut points, and the 27 cells mapped
//! onto named groups. The rules, with the tie-breaking, are in docs/SEGMENTS.md.

use crate::problem::FieldProblem;
use serde::{Deserialize, Serialize};

/// The window when a program sets none.
pub const DEFAULT_WINDOW_DAYS: i64 = 365;

/// Cut points a merchant sets instead of tertiles: `[for 3, for 2]` on each dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Days since the last purchase: R = 3 at most `[0]` days, 2 at most `[1]`, else 1.
    #[schema(example = json!([30, 90]))]
    pub recency_days: [i64; 2],
    /// Purchases in the window: F = 3 from `[0]`, 2 from `[1]`, else 1.
    #[schema(example = json!([5, 2]))]
    pub frequency: [i64; 2],
    /// Money spent in the window net of returns, minor units: M = 3 from `[0]`, 2 from `[1]`.
    #[schema(example = json!([50000, 10000]))]
    pub monetary: [i64; 2],
}

impl Thresholds {
    pub fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        let [r3, r2] = self.recency_days;
        if !(0..=36_500).contains(&r3) || !(0..=36_500).contains(&r2) || r3 >= r2 {
            out.push(FieldProblem::new(
                "/rfm_thresholds/recency_days",
                "two day counts from 0 to 36500, the first (for R = 3) below the second",
            ));
        }
        let [f3, f2] = self.frequency;
        if !(1..=1_000_000).contains(&f2) || !(1..=1_000_000).contains(&f3) || f3 <= f2 {
            out.push(FieldProblem::new(
                "/rfm_thresholds/frequency",
                "two purchase counts from 1 to 1000000, the first (for F = 3) above the second",
            ));
        }
        let [m3, m2] = self.monetary;
        let max = crate::domain::ranges::MAX_AMOUNT;
        if !(1..=max).contains(&m2) || !(1..=max).contains(&m3) || m3 <= m2 {
            out.push(FieldProblem::new(
                "/rfm_thresholds/monetary",
                "two amounts in minor units, at least 1, the first (for M = 3) above the second",
            ));
        }
        out
    }
}

/// A named group of RFM cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Champions,
    Loyal,
    Promising,
    New,
    BigSpenders,
    NeedsAttention,
    AtRisk,
    CantLose,
    Hibernating,
    Lost,
    /// No purchase in the window (`rfm: null`).
    NoPurchases,
}

impl Group {
    pub const ALL: [Group; 11] = [
        Group::Champions,
        Group::Loyal,
        Group::Promising,
        Group::New,
        Group::BigSpenders,
        Group::NeedsAttention,
        Group::AtRisk,
        Group::CantLose,
        Group::Hibernating,
        Group::Lost,
        Group::NoPurchases,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Champions => "champions",
            Group::Loyal => "loyal",
            Group::Promising => "promising",
            Group::New => "new",
            Group::BigSpenders => "big_spenders",
            Group::NeedsAttention => "needs_attention",
            Group::AtRisk => "at_risk",
            Group::CantLose => "cant_lose",
            Group::Hibernating => "hibernating",
            Group::Lost => "lost",
            Group::NoPurchases => "no_purchases",
        }
    }

    pub fn parse(s: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.as_str() == s)
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Group::Champions => "Champions",
            Group::Loyal => "Loyal",
            Group::Promising => "Promising",
            Group::New => "New",
            Group::BigSpenders => "One-time big spenders",
            Group::NeedsAttention => "Need attention",
            Group::AtRisk => "At risk",
            Group::CantLose => "Can't lose them",
            Group::Hibernating => "Hibernating",
            Group::Lost => "Lost",
            Group::NoPurchases => "No purchases",
        }
    }

    pub fn name_ru(self) -> &'static str {
        match self {
            Group::Champions => "Чемпионы",
            Group::Loyal => "Лояльные",
            Group::Promising => "Перспективные",
            Group::New => "Новые",
            Group::BigSpenders => "Крупные разовые покупатели",
            Group::NeedsAttention => "Требуют внимания",
            Group::AtRisk => "В зоне риска",
            Group::CantLose => "Нельзя потерять",
            Group::Hibernating => "Спящие",
            Group::Lost => "Потерянные",
            Group::NoPurchases => "Без покупок",
        }
    }
}

/// The group of each cell, R then F then M from 3 down to 1 (docs/SEGMENTS.md shows it
/// as a table): the one place the mapping is written.
const CELLS: [(&str, Group); 27] = [
    ("333", Group::Champions),
    ("332", Group::Champions),
    ("331", Group::Loyal),
    ("323", Group::Promising),
    ("322", Group::Promising),
    ("321", Group::Promising),
    ("313", Group::BigSpenders),
    ("312", Group::New),
    ("311", Group::New),
    ("233", Group::Loyal),
    ("232", Group::Loyal),
    ("231", Group::Loyal),
    ("223", Group::NeedsAttention),
    ("222", Group::NeedsAttention),
    ("221", Group::NeedsAttention),
    ("213", Group::BigSpenders),
    ("212", Group::Hibernating),
    ("211", Group::Hibernating),
    ("133", Group::CantLose),
    ("132", Group::CantLose),
    ("131", Group::AtRisk),
    ("123", Group::AtRisk),
    ("122", Group::AtRisk),
    ("121", Group::AtRisk),
    ("113", Group::Hibernating),
    ("112", Group::Lost),
    ("111", Group::Lost),
];

/// Every cell, "333" first.
pub fn cells() -> impl Iterator<Item = (&'static str, Group)> {
    CELLS.into_iter()
}

/// The group of a cell such as "311"; `None` for anything else.
pub fn group_of(cell: &str) -> Option<Group> {
    CELLS.iter().find(|(c, _)| *c == cell).map(|(_, g)| *g)
}

/// Whether `s` is one of the 27 cells.
pub fn is_cell(s: &str) -> bool {
    group_of(s).is_some()
}

/// The mapping as a SQL `CASE` over the text expression `cell` (generated from [`CELLS`],
/// so the job's SQL and the Rust table cannot disagree).
pub fn group_case_sql(cell: &str) -> String {
    let mut sql = format!("CASE {cell}");
    for (c, g) in CELLS {
        sql.push_str(&format!(" WHEN '{c}' THEN '{}'", g.as_str()));
    }
    sql.push_str(" ELSE 'no_purchases' END");
    sql
}

/// The score of one dimension against cut points `[for 3, for 2]` where bigger is better.
pub fn score_up(value: i64, cuts: [Option<i64>; 2]) -> i16 {
    match cuts {
        [Some(c3), _] if value >= c3 => 3,
        [_, Some(c2)] if value >= c2 => 2,
        _ => 1,
    }
}

/// The same where smaller is better (days since the last purchase).
pub fn score_down(value: i64, cuts: [Option<i64>; 2]) -> i16 {
    match cuts {
        [Some(c3), _] if value <= c3 => 3,
        [_, Some(c2)] if value <= c2 => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_has_one_group_and_every_group_but_no_purchases_a_cell() {
        let mut seen = std::collections::HashSet::new();
        for r in 1..=3 {
            for f in 1..=3 {
                for m in 1..=3 {
                    let cell = format!("{r}{f}{m}");
                    assert!(group_of(&cell).is_some(), "{cell}");
                    seen.insert(group_of(&cell).unwrap());
                }
            }
        }
        assert_eq!(CELLS.len(), 27);
        for g in Group::ALL {
            assert_eq!(seen.contains(&g), g != Group::NoPurchases, "{g:?}");
            assert_eq!(Group::parse(g.as_str()), Some(g));
        }
        assert_eq!(group_of("311"), Some(Group::New));
        assert_eq!(group_of("3111"), None);
        assert!(group_case_sql("x").contains("WHEN '133' THEN 'cant_lose'"));
    }

    #[test]
    fn scores_against_cut_points() {
        assert_eq!(score_up(5, [Some(5), Some(2)]), 3);
        assert_eq!(score_up(4, [Some(5), Some(2)]), 2);
        assert_eq!(score_up(1, [Some(5), Some(2)]), 1);
        // No value reached 3 when the cuts were set: nobody scores it.
        assert_eq!(score_up(100, [None, Some(2)]), 2);
        assert_eq!(score_down(0, [Some(0), Some(30)]), 3);
        assert_eq!(score_down(31, [Some(0), Some(30)]), 1);
        assert_eq!(score_down(31, [None, None]), 1);
    }

    #[test]
    fn merchant_thresholds_must_be_ordered() {
        let ok = Thresholds {
            recency_days: [30, 90],
            frequency: [5, 2],
            monetary: [50_000, 10_000],
        };
        assert!(ok.problems().is_empty());
        let bad = Thresholds {
            recency_days: [90, 30],
            frequency: [2, 5],
            monetary: [0, 0],
        };
        assert_eq!(bad.problems().len(), 3);
    }
}
