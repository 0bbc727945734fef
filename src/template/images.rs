//! Template images: PNG only, at the sizes Apple's design guidance gives for store cards, plus
//! two optional images of Google Wallet's own sizes.
//!
//! Sizes are read from the PNG header (IHDR) before anything is decoded: a small upload of a
//! flat colour can decode to hundreds of megabytes, so an image of the wrong size is refused
//! from its first 33 bytes. Images of the right size are then decoded row by row, to prove
//! a phone can read them, with at most [`Decodes`] of them at once and off the actix workers.

use super::reason::{ImageSize as Expect, PixelFormat, Reason, TemplateProblem};
use crate::problem::{ApiError, ProblemKind};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Image file name -> PNG bytes.
pub type Images = BTreeMap<String, Vec<u8>>;

/// Google Wallet's program logo (loyalty classes, gift card classes): a square of at least
/// 660x660 pixels. Served at `public_pages::template_image_path(.., GOOGLE_LOGO)`.
pub const GOOGLE_LOGO: &str = "google_logo.png";
/// Google Wallet's hero image: 1032x336 pixels (3:1). Served like [`GOOGLE_LOGO`].
pub const GOOGLE_HERO: &str = "google_hero.png";

/// Whether a template image is one of Google's, which the Apple package leaves out.
pub fn is_google(file: &str) -> bool {
    file == GOOGLE_LOGO || file == GOOGLE_HERO
}

/// Whether a `w`x`h` image has the size `expect` asks for.
fn fits(expect: Expect, w: u32, h: u32) -> bool {
    match expect {
        Expect::Exact(ew, eh) => (w, h) == (ew, eh),
        Expect::AtMost(ew, eh) => w > 0 && h > 0 && w <= ew && h <= eh,
        Expect::Square { min, max } => w == h && (min..=max).contains(&w),
        Expect::Ratio { w: ew, h: eh } => {
            // Height within 1% (at least a pixel) of the exact ratio's.
            let want = u64::from(w) * u64::from(eh) / u64::from(ew);
            let slack = (want / 100).max(1);
            (ew..=2 * ew).contains(&w) && u64::from(h).abs_diff(want) <= slack
        }
    }
}

/// Size rule of one Apple image kind, in points (multiplied by the @2x/@3x scale).
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
pub fn check(images: &Images, pointer: &str) -> Vec<TemplateProblem> {
    let mut problems = Vec::new();
    if !images.contains_key("icon.png") {
        problems.push(TemplateProblem::new(
            format!("{pointer}/icon.png"),
            Reason::IconRequired,
        ));
    }
    for (file, bytes) in images {
        let at = format!("{pointer}/{}", pointer_token(file));
        let Some(expect) = expected(file) else {
            problems.push(TemplateProblem::new(at, Reason::UnknownImage));
            continue;
        };
        let header = match Header::read(bytes) {
            Ok(header) => header,
            Err(e) => {
                problems.push(TemplateProblem::new(at, Reason::NotPng { error: e }));
                continue;
            }
        };
        if !fits(expect, header.width, header.height) {
            problems.push(TemplateProblem::new(
                at,
                Reason::WrongImageSize {
                    file: file.clone(),
                    width: header.width,
                    height: header.height,
                    pixels: PixelFormat {
                        bit_depth: header.bit_depth,
                        color_type: header.color_type,
                    },
                    expected: expect,
                },
            ));
            continue;
        }
        if let Err(e) = decodes(bytes) {
            problems.push(TemplateProblem::new(at, Reason::NotPng { error: e }));
        }
    }
    problems
}

/// The size a file name must have, or `None` for a name that is no template image.
fn expected(file: &str) -> Option<Expect> {
    match file {
        GOOGLE_LOGO => {
            return Some(Expect::Square {
                min: 660,
                max: 1320,
            })
        }
        GOOGLE_HERO => return Some(Expect::Ratio { w: 1032, h: 336 }),
        _ => {}
    }
    let stem = file.strip_suffix(".png")?;
    let (base, scale) = match stem.split_once('@') {
        Some((base, "2x")) => (base, 2),
        Some((base, "3x")) => (base, 3),
        Some(_) => return None,
        None => (stem, 1),
    };
    let rule = RULES.iter().find(|r| r.name == base)?;
    let (w, h) = (rule.width * scale, rule.height * scale);
    Some(if rule.exact {
        Expect::Exact(w, h)
    } else {
        Expect::AtMost(w, h)
    })
}

/// The PNG header: signature, then the IHDR chunk, always first.
struct Header {
    width: u32,
    height: u32,
    bit_depth: u8,
    color_type: u8,
}

impl Header {
    fn read(bytes: &[u8]) -> Result<Header, String> {
        const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
        let Some(ihdr) = bytes.get(..33) else {
            return Err("too short for a PNG header".into());
        };
        if &ihdr[..8] != SIGNATURE {
            return Err("no PNG signature".into());
        }
        if &ihdr[8..16] != b"\0\0\0\x0dIHDR" {
            return Err("the first chunk is not IHDR".into());
        }
        let be =
            |at: usize| u32::from_be_bytes([ihdr[at], ihdr[at + 1], ihdr[at + 2], ihdr[at + 3]]);
        Ok(Header {
            width: be(16),
            height: be(20),
            bit_depth: ihdr[24],
            color_type: ihdr[25],
        })
    }
}

/// Decodes every row: a truncated or corrupt body would break the pass on a phone. Row by
/// row, so memory stays at two rows whatever the image.
fn decodes(bytes: &[u8]) -> Result<(), String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    while reader.next_row().map_err(|e| e.to_string())?.is_some() {}
    Ok(())
}

/// How many image checks run at once (`PASSFOLD_IMAGE_DECODES`), each on a blocking thread
/// rather than an actix worker, so uploads cannot starve `/readyz` or other requests.
#[derive(Clone)]
pub struct Decodes(Arc<tokio::sync::Semaphore>);

impl Decodes {
    pub fn new(at_once: usize) -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(at_once.max(1))))
    }

    /// Runs `work` (a validation that decodes images) when a turn is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _turn =
            self.0.acquire().await.map_err(|_| {
                ApiError::new(ProblemKind::Unavailable, "the service is shutting down")
            })?;
        Ok(actix_web::web::block(work).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, depth: png::BitDepth) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(depth);
        let bytes_per_pixel = if depth == png::BitDepth::Sixteen {
            8
        } else {
            4
        };
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&vec![7; (width * height * bytes_per_pixel) as usize])
            .unwrap();
        writer.finish().unwrap();
        out
    }

    fn problems(file: &str, bytes: Vec<u8>) -> Vec<String> {
        let mut images = Images::new();
        images.insert("icon.png".into(), png(29, 29, png::BitDepth::Eight));
        images.insert(file.into(), bytes);
        check(&images, "/images")
            .into_iter()
            .map(|p| format!("{} {}", p.pointer, p.reason))
            .collect()
    }

    #[test]
    fn a_wrong_size_is_named_with_the_size_expected() {
        let big = problems("icon@2x.png", png(1024, 1024, png::BitDepth::Sixteen));
        assert_eq!(
            big,
            ["/images/icon@2x.png icon@2x.png is 1024x1024 (16-bit RGBA); Apple Wallet expects 58x58"]
        );
        let strip = problems("strip@3x.png", png(1200, 400, png::BitDepth::Eight));
        assert!(
            strip[0].ends_with("Apple Wallet expects at most 1125x432"),
            "{strip:?}"
        );
        let logo = problems(GOOGLE_LOGO, png(87, 87, png::BitDepth::Eight));
        assert!(logo[0].contains("google_logo.png is 87x87"), "{logo:?}");
        assert!(logo[0].contains("at least 660x660"), "{logo:?}");
        let hero = problems(GOOGLE_HERO, png(1125, 432, png::BitDepth::Eight));
        assert!(
            hero[0].contains("Google Wallet expects 1032x336"),
            "{hero:?}"
        );
    }

    #[test]
    fn google_images_of_the_right_shape_pass() {
        assert!(problems(GOOGLE_LOGO, png(660, 660, png::BitDepth::Eight)).is_empty());
        assert!(problems(GOOGLE_HERO, png(1032, 336, png::BitDepth::Eight)).is_empty());
        assert!(problems(GOOGLE_HERO, png(2064, 672, png::BitDepth::Eight)).is_empty());
        assert_eq!(
            problems(GOOGLE_LOGO, png(661, 660, png::BitDepth::Eight)).len(),
            1
        );
    }

    #[test]
    fn the_header_decides_before_any_decoding() {
        // A header announcing 50000x50000 with no image data behind it: refused by size,
        // where a decoder would have allocated gigabytes or failed on the data.
        let mut fake = png(29, 29, png::BitDepth::Eight);
        fake[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        fake[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        let found = problems("logo.png", fake);
        assert!(
            found[0].contains("logo.png is 50000x50000 (8-bit RGBA)"),
            "{found:?}"
        );
        // A right-sized image whose data is cut off is still caught by the decode.
        let mut cut = png(160, 50, png::BitDepth::Eight);
        cut.truncate(cut.len() / 2);
        let found = problems("logo.png", cut);
        assert!(found[0].contains("not a valid PNG image"), "{found:?}");
    }
}
