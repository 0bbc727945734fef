use crate::problem::ApiError;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn from_request(req: &HttpRequest) -> Result<Self, ApiError> {
        let value = req
            .headers()
            .get("Idempotency-Key")
            .ok_or_else(|| ApiError::bad_request("this request changes money or points: send an Idempotency-Key header (e.g. a UUID) and reuse it when retrying"))?;
        let text = value
            .to_str()
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= 255 && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
            })?;
        Ok(Self(text.to_string()))
    }

    /// The key a console form carried in its hidden field (a UUID made when the form was
    /// rendered), kept apart from API clients' keys by its prefix.
    pub fn of_console_form(field: &str) -> Option<Self> {
        uuid::Uuid::parse_str(field.trim())
            .ok()
            .map(|id| Self(format!("console:{id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of the method, the path and the body in canonical form (keys sorted, no
/// whitespace), so a retry that re-serializes the same JSON still matches.
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    canonical(body, &mut hasher);
    hasher.finalize().to_vec()
}

fn canonical(value: &serde_json::Value, out: &mut Sha256) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.update(b"{");
            for k in keys {
                out.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                out.update(b":");
                canonical(&map[k], out);
                out.update(b",");
            }
            out.update(b"}");
        }
        serde_json::Value::Array(items) => {
            out.update(b"[");
            for item in items {
                canonical(item, out);
                out.update(b",");
            }
            out.update(b"]");
        }
        other => out.update(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_request_in_another_order_has_the_same_fingerprint() {
        let a = fingerprint("POST", "/x", &json!({"amount": 5, "currency": "EUR"}));
        let b = fingerprint("POST", "/x", &json!({"currency": "EUR", "amount": 5}));
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint("POST", "/x", &json!({"amount": 6, "currency": "EUR"}))
        );
        assert_ne!(
            a,
            fingerprint("POST", "/y", &json!({"amount": 5, "currency": "EUR"}))
        );
    }
}
