use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use std::fmt;

/// An ISO-4217 currency with a fixed number of minor units (no funds, metals or "no
/// currency" codes: a card balance must be spendable money).
///
/// Read and written as its code: in JSON, and in `char(3)` columns through diesel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Currency {
    inner: iso_currency::Currency,
    exponent: u16,
}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        let inner = iso_currency::Currency::from_code(code)
            .ok_or_else(|| format!("{code:?} is not an ISO-4217 currency code"))?;
        let exponent = inner
            .exponent()
            .filter(|_| !inner.is_fund() && !inner.is_special())
            .ok_or_else(|| format!("{code} is not a currency a card can hold"))?;
        if inner.is_superseded().is_some() {
            return Err(format!("{code} is superseded by {}", inner.latest().code()));
        }
        Ok(Self { inner, exponent })
    }

    pub fn code(&self) -> &'static str {
        self.inner.code()
    }

    /// Number of minor-unit digits: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u16 {
        self.exponent
    }

    /// Minor units in one major unit.
    pub fn minor_per_major(&self) -> i64 {
        10_i64.pow(u32::from(self.exponent))
    }

    pub fn symbol(&self) -> String {
        self.inner.symbol().symbol
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Currency {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, String> {
        Currency::parse(code)
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

impl ToSql<Text, Pg> for Currency {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.code(), out)
    }
}

impl FromSql<Text, Pg> for Currency {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let code = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        // `char(3)` pads shorter text with blanks; every code is three letters anyway.
        Ok(Currency::parse(code.trim_end())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spendable_currencies_only() {
        assert_eq!(Currency::parse("EUR").map(|c| c.exponent()), Ok(2));
        assert_eq!(Currency::parse("JPY").map(|c| c.minor_per_major()), Ok(1));
        assert_eq!(Currency::parse("KWD").map(|c| c.exponent()), Ok(3));
        for bad in ["eur", "XXX", "XAU", "ABC", "", "EURO"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_is_the_code() -> Result<(), serde_json::Error> {
        let eur: Currency = serde_json::from_str("\"EUR\"")?;
        assert_eq!(serde_json::to_string(&eur)?, "\"EUR\"");
        assert!(serde_json::from_str::<Currency>("\"eur\"").is_err());
        Ok(())
    }
}
