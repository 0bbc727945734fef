use rand::Rng;
use std::fmt;

/// A 16-digit card number whose last digit is a Luhn check digit: gift-card GANs and
/// loyalty card numbers (what the pass's barcode carries) alike. A mistyped number is
/// refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(String);

impl CardNumber {
    pub const LEN: usize = 16;

    pub fn generate() -> Self {
        let mut rng = rand::rng();
        // A leading non-zero digit keeps the number the same length in every system.
        let mut digits: Vec<u8> = vec![rng.random_range(1..=9)];
        digits.extend((0..Self::LEN - 2).map(|_| rng.random_range(0..=9u8)));
        let check = luhn_check_digit(&digits);
        digits.push(check);
        Self(digits.iter().map(|d| char::from(b'0' + d)).collect())
    }

    /// Accepts the number with spaces or dashes between groups, as people type it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if compact.len() != Self::LEN || !compact.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("a card number has {} digits", Self::LEN));
        }
        let digits: Vec<u8> = compact.bytes().map(|b| b - b'0').collect();
        if luhn_check_digit(&digits[..Self::LEN - 1]) != digits[Self::LEN - 1] {
            return Err("the card number's check digit is wrong".into());
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - (sum % 10)) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_numbers_pass_their_own_check() {
        for _ in 0..1000 {
            let n = CardNumber::generate();
            assert_eq!(CardNumber::parse(n.as_str()).as_ref(), Ok(&n));
        }
    }

    #[test]
    fn known_luhn_numbers() {
        assert!(CardNumber::parse("4111 1111 1111 1111").is_ok());
        assert!(CardNumber::parse("4111-1111-1111-1112").is_err());
        assert!(CardNumber::parse("411111111111111").is_err());
        assert!(CardNumber::parse("4111111111111111x").is_err());
    }

    #[test]
    fn every_single_digit_error_is_caught() {
        let n = CardNumber::generate();
        let bytes = n.as_str().as_bytes();
        for pos in 0..16 {
            for d in b'0'..=b'9' {
                if d == bytes[pos] {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[pos] = d;
                let changed = String::from_utf8_lossy(&changed);
                assert!(CardNumber::parse(&changed).is_err(), "{changed}");
            }
        }
    }
}
