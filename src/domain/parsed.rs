//! A field parsed while its body is read, whose refusal is kept instead of failing the whole
//! body: the handler reports it as that field's problem (422) at the point its checks reach
//! it, so answers stay what they were when the field was checked text. A value of the wrong
//! JSON type still makes the body unreadable (400).

use serde::{Deserialize, Deserializer};
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Parsed<T>(Result<T, String>);

impl<T: Clone> Parsed<T> {
    /// The value, or why the text was refused.
    pub fn get(&self) -> Result<T, String> {
        self.0.clone()
    }
}

impl<'de, T: FromStr<Err = String>> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Parsed(text.parse()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    #[test]
    fn keeps_the_refusal_for_later() -> Result<(), serde_json::Error> {
        let good: Parsed<Currency> = serde_json::from_str("\"EUR\"")?;
        assert_eq!(good.get().map(|c| c.code()), Ok("EUR"));
        let bad: Parsed<Currency> = serde_json::from_str("\"EURO\"")?;
        assert!(bad.get().is_err());
        assert!(serde_json::from_str::<Parsed<Currency>>("978").is_err());
        Ok(())
    }
}
