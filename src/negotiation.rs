//! Quality values of `Accept`-style headers (RFC 9110, 12.4.2): what the caller lists, each
//! with its weight. One reading for the pages' language and the API's CSV answers.

/// The items of one header value (`text/csv;q=0.5, application/json`), trimmed, each
/// with its `q` (1 when absent or unreadable as a number).
pub fn weighted(value: &str) -> impl Iterator<Item = (&str, f32)> {
    value.split(',').map(|part| {
        let mut pieces = part.split(';');
        let item = pieces.next().unwrap_or("").trim();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (item, q)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_their_weights() {
        let got: Vec<(&str, f32)> =
            weighted(" text/csv;q=0.1, application/json ;charset=x; q=0.9,ru").collect();
        assert_eq!(
            got,
            vec![("text/csv", 0.1), ("application/json", 0.9), ("ru", 1.0)]
        );
    }
}
