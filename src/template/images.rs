//! Template images: PNG only, at the sizes Apple's design guidance gives for store cards.

use crate::problem::FieldProblem;
use std::collections::BTreeMap;

/// Image file name -> PNG bytes.
pub type Images = BTreeMap<String, Vec<u8>>;

/// Size rule of one image kind, in points (multiplied by the @2x/@3x scale).
struct Rule {
    name: &'static str,
    exact: bool,
    width: u32,
    height: u32,
}

/// storeCard images. Background and thumbnail images are not shown on store cards.
const RULES: &[Rule] = &[
    Rule {
        name: "icon",
        exact: true,
        width: 29,
        height: 29,
    },
    Rule {
        name: "logo",
        exact: false,
        width: 160,
        height: 50,
    },
    Rule {
        name: "strip",
        exact: false,
        width: 375,
        height: 144,
    },
];

/// JSON pointer token escaping (RFC 6901).
pub fn pointer_token(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

/// Checks every image and that `icon.png` is there; returns each problem found.
pub fn check(images: &Images, pointer: &str) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if !images.contains_key("icon.png") {
        problems.push(FieldProblem::new(
            format!("{pointer}/icon.png"),
            "an icon (icon.png, 29x29 pixels) is required: Wallet will not show a pass without it",
        ));
    }
    for (file, bytes) in images {
        let at = format!("{pointer}/{}", pointer_token(file));
        let Some((rule, scale)) = parse_name(file) else {
            problems.push(FieldProblem::new(
                at,
                "unknown image name: use icon, logo or strip, optionally @2x or @3x, with .png",
            ));
            continue;
        };
        let (w, h) = match png_size(bytes) {
            Ok(size) => size,
            Err(e) => {
                problems.push(FieldProblem::new(at, format!("not a valid PNG image: {e}")));
                continue;
            }
        };
        let (rw, rh) = (rule.width * scale, rule.height * scale);
        let fits = if rule.exact {
            (w, h) == (rw, rh)
        } else {
            w <= rw && h <= rh && w > 0 && h > 0
        };
        if !fits {
            let want = if rule.exact {
                format!("exactly {rw}x{rh}")
            } else {
                format!("at most {rw}x{rh}")
            };
            problems.push(FieldProblem::new(
                at,
                format!("{w}x{h} pixels; {file} must be {want}"),
            ));
        }
    }
    problems
}

fn parse_name(file: &str) -> Option<(&'static Rule, u32)> {
    let stem = file.strip_suffix(".png")?;
    let (base, scale) = match stem.split_once('@') {
        Some((base, "2x")) => (base, 2),
        Some((base, "3x")) => (base, 3),
        Some(_) => return None,
        None => (stem, 1),
    };
    RULES.iter().find(|r| r.name == base).map(|r| (r, scale))
}

fn png_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let (w, h) = (reader.info().width, reader.info().height);
    if w > 4096 || h > 4096 {
        return Err(format!("{w}x{h} pixels is far larger than any pass image"));
    }
    // Decode the first frame too: a truncated or corrupt body would break the pass on a phone.
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    Ok((w, h))
}
