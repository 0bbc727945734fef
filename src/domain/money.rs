use super::Currency;

/// An amount in minor units of a currency, formatted for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// The amount in major units as a decimal number, for Apple's numeric fields.
    pub fn major_f64(&self) -> f64 {
        self.minor as f64 / self.currency.minor_per_major() as f64
    }

    /// Localised text: `€12.50` in English, `12,50 €` in Russian (and other languages that
    /// put the symbol after the amount with a decimal comma).
    pub fn format(&self, language: &str) -> String {
        let per = self.currency.minor_per_major() as u64;
        let abs = self.minor.unsigned_abs();
        let (major, minor) = (abs / per, abs % per);
        let sign = if self.minor < 0 { "-" } else { "" };
        let comma_style = matches!(
            language,
            "ru" | "uk"
                | "de"
                | "fr"
                | "es"
                | "it"
                | "pl"
                | "cs"
                | "pt"
                | "nl"
                | "sv"
                | "fi"
                | "tr"
        );
        let (group, decimal) = if comma_style {
            ('\u{a0}', ',')
        } else {
            (',', '.')
        };
        let mut digits = group_thousands(major, group);
        if self.currency.exponent() > 0 {
            digits.push(decimal);
            digits.push_str(&format!(
                "{:0width$}",
                minor,
                width = self.currency.exponent() as usize
            ));
        }
        let symbol = self.currency.symbol();
        if comma_style {
            format!("{sign}{digits}\u{a0}{symbol}")
        } else {
            format!("{sign}{symbol}{digits}")
        }
    }
}

fn group_thousands(n: u64, separator: char) -> String {
    let text = n.to_string();
    let mut out = String::with_capacity(text.len() + text.len() / 3);
    for (i, c) in text.chars().enumerate() {
        if i > 0 && (text.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_language_and_exponent() -> Result<(), String> {
        let eur = Currency::parse("EUR")?;
        assert_eq!(Money::new(1250, eur).format("en"), "€12.50");
        assert_eq!(Money::new(1250, eur).format("ru"), "12,50\u{a0}€");
        assert_eq!(Money::new(123456789, eur).format("en"), "€1,234,567.89");
        let jpy = Currency::parse("JPY")?;
        assert_eq!(Money::new(1500, jpy).format("en"), "¥1,500");
        assert_eq!(Money::new(5, eur).format("en"), "€0.05");
        assert!((Money::new(1250, eur).major_f64() - 12.5).abs() < 1e-9);
        Ok(())
    }
}
