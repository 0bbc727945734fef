//! The console's own files, built into the binary and served under `/console/assets/` with
//! a content hash in each name (`console.3f9a0c1b2d4e.css`): a changed file gets a new
//! name, so every asset may be cached for a year and a page never mixes versions. Later
//! pages add their files (scripts too) to [`FILES`].

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Logical name, media type, contents.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/console.css"),
    ),
    (
        "preview.css",
        "text/css; charset=utf-8",
        include_bytes!("../template/preview.css"),
    ),
    (
        "designer.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/designer.js"),
    ),
];

struct Asset {
    logical: &'static str,
    served_as: String,
    content_type: &'static str,
    body: &'static [u8],
}

fn all() -> &'static [Asset] {
    static ALL: OnceLock<Vec<Asset>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|(logical, content_type, body)| {
                let hash = hex::encode(&Sha256::digest(body)[..6]);
                let (stem, ext) = logical.rsplit_once('.').unwrap_or((logical, ""));
                Asset {
                    logical,
                    served_as: format!("{stem}.{hash}.{ext}"),
                    content_type,
                    body,
                }
            })
            .collect()
    })
}

/// The URL of a file by its logical name (`"console.css"`); a name not in [`FILES`] is a
/// programming error caught by the tests, answered with a path that is not found.
pub fn url(logical: &str) -> String {
    all()
        .iter()
        .find(|a| a.logical == logical)
        .map(|a| format!("/console/assets/{}", a.served_as))
        .unwrap_or_else(|| format!("/console/assets/missing-{logical}"))
}

pub async fn serve(file: web::Path<String>) -> HttpResponse {
    match all().iter().find(|a| a.served_as == *file) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(asset.body),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body("no such file"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_carry_the_content_hash() {
        let url = super::url("console.css");
        let name = url.trim_start_matches("/console/assets/");
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(parts.len(), 3, "{url}");
        assert_eq!(parts[0], "console");
        assert_eq!(parts[1].len(), 12);
        assert_eq!(parts[2], "css");
    }
}
