//! Uploads of any size made into the images a slot needs: a PNG or JPEG of any dimensions
//! becomes Apple's icon, logo or strip at 1x/2x/3x, or Google's logo or hero, each of the
//! size [`super::images::check`] accepts.
//!
//! Hostile uploads are refused before they cost much: the format is read from the first
//! bytes, the dimensions from the header alone, and an image over [`MAX_PIXELS`] is refused
//! before a pixel is decoded; the decoder itself runs under [`MAX_DECODE_BYTES`]. Decoding
//! and resizing are CPU work: callers run [`fit`] through `images::Decodes`.

use super::images::{Images, GOOGLE_HERO, GOOGLE_LOGO};
use crate::problem::FieldProblem;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest upload, in pixels, that is decoded at all: 40 megapixels takes any phone photo
/// (48 MP sensors save 12 or 24 MP by default) while bounding what one decode may hold.
pub const MAX_PIXELS: u64 = 40_000_000;
/// The decoder's memory bound: 40 MP of 8-bit RGBA with room to spare; a 16-bit RGBA
/// image that large would need 320 MB and is refused.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// How much an upload may be enlarged to fill its largest output. Beyond twice, a phone's
/// retina screen shows the blur; a bigger image is the honest fix.
pub const MAX_UPSCALE: f64 = 2.0;

/// Where an upload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Apple's icon (lock screen, notifications): a square, cropped to fill.
    Icon,
    /// Apple's logo, top left of the pass: fitted within 160x50 points, never cropped.
    Logo,
    /// Apple's strip behind the primary field: cropped to fill 375x144 points. Apple
    /// accepts smaller strips, but Wallet stretches the strip across the card's width, so
    /// a fitted (narrower) one would be cropped on the phone where the preview cannot show.
    Strip,
    /// Google's program logo: a 660x660 square, cropped to fill (Google masks it round).
    GoogleLogo,
    /// Google's hero image: 1032x336, cropped to fill.
    GoogleHero,
}

/// How an upload is made into a slot's size.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Centre crop to this ratio, then exactly this size (at each scale).
    Cover(u32, u32),
    /// The whole image, scaled to fit within this size (at each scale).
    Within(u32, u32),
}

/// A rectangle of the (orientation-corrected) upload, in its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// One image file made for the slot.
pub struct FittedFile {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
}

/// The slot's files, and what of the upload they show.
pub struct Fitted {
    pub slot: Slot,
    /// The upload's size, upright (after its EXIF orientation).
    pub source_width: u32,
    pub source_height: u32,
    /// The part of the upload kept: the centre crop, or all of it.
    pub kept: Rect,
    /// Smallest scale first.
    pub files: Vec<FittedFile>,
}

impl Slot {
    pub const ALL: [Slot; 5] = [
        Slot::Icon,
        Slot::Logo,
        Slot::Strip,
        Slot::GoogleLogo,
        Slot::GoogleHero,
    ];

    /// The slot named in a URL: `icon`, `logo`, `strip`, `google_logo`, `google_hero`.
    pub fn parse(name: &str) -> Option<Slot> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Slot::Icon => "icon",
            Slot::Logo => "logo",
            Slot::Strip => "strip",
            Slot::GoogleLogo => "google_logo",
            Slot::GoogleHero => "google_hero",
        }
    }

    /// The files the slot is made of, smallest first, with their scale.
    pub fn files(self) -> &'static [(&'static str, u32)] {
        match self {
            Slot::Icon => &[("icon.png", 1), ("icon@2x.png", 2), ("icon@3x.png", 3)],
            Slot::Logo => &[("logo.png", 1), ("logo@2x.png", 2), ("logo@3x.png", 3)],
            Slot::Strip => &[("strip.png", 1), ("strip@2x.png", 2), ("strip@3x.png", 3)],
            Slot::GoogleLogo => &[(GOOGLE_LOGO, 1)],
            Slot::GoogleHero => &[(GOOGLE_HERO, 1)],
        }
    }

    fn shape(self) -> Shape {
        // Apple's sizes are points of a store card (images::RULES); Google's are pixels.
        match self {
            Slot::Icon => Shape::Cover(29, 29),
            Slot::Logo => Shape::Within(160, 50),
            Slot::Strip => Shape::Cover(375, 144),
            Slot::GoogleLogo => Shape::Cover(660, 660),
            Slot::GoogleHero => Shape::Cover(1032, 336),
        }
    }

    /// Where a problem with an upload to this slot is reported.
    pub fn pointer(self) -> String {
        format!("/images/{}", self.name())
    }
}

impl Fitted {
    /// The file to show as the crop's preview: @2x for Apple (what a phone shows), else the
    /// only one.
    pub fn preview(&self) -> &FittedFile {
        let at = if self.files.len() > 1 { 1 } else { 0 };
        &self.files[at]
    }

    /// Puts the slot's files into a template's images, in place of the slot's old ones.
    pub fn apply_to(&self, images: &mut Images) {
        for (name, _) in self.slot.files() {
            images.remove(*name);
        }
        for file in &self.files {
            images.insert(file.name.to_string(), file.png.clone());
        }
    }
}

/// What the first bytes say a file is; only PNG and JPEG are taken.
fn sniff(bytes: &[u8]) -> Result<ImageFormat, String> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageFormat::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageFormat::Jpeg);
    }
    let what = if bytes.starts_with(b"GIF8") {
        "a GIF image"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "a WebP image"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "a HEIC/AVIF image (save it as JPEG or PNG)"
    } else if bytes.starts_with(b"BM") {
        "a BMP image"
    } else if bytes.is_empty() {
        "empty"
    } else {
        "not an image we recognise"
    };
    Err(format!(
        "only PNG and JPEG images are taken; this file is {what}"
    ))
}

/// Whether a JPEG's image data reaches its end-of-image marker. The decoder is lenient and
/// paints what a cut file lacks in grey; that would reach phones, so it is checked here. The
/// marker is looked for after the first scan header, walking the segments before it by
/// their lengths: an EXIF thumbnail (a whole JPEG inside APP1) has one of its own. Inside
/// scan data a 0xFF byte is always followed by 0x00 or a marker, so 0xFF 0xD9 there is
/// the real end; data after it (a phone's "motion photo") is allowed.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let mut at = 2;
    loop {
        let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return false;
        };
        match marker {
            // Fill bytes before a marker.
            0xFF => at += 1,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => at += 2,
            0xD9 => return false,
            _ => {
                let Some(len) = bytes.get(at + 2..at + 4) else {
                    return false;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                at += 2 + len;
                if marker == 0xDA {
                    return bytes
                        .get(at..)
                        .is_some_and(|scan| scan.windows(2).any(|w| w == [0xFF, 0xD9]));
                }
            }
        }
    }
}

/// The upload made into the slot's files, or why it cannot be.
pub fn fit(bytes: &[u8], slot: Slot) -> Result<Fitted, FieldProblem> {
    let problem = |detail: String| FieldProblem::new(slot.pointer(), detail);
    let format = sniff(bytes).map_err(problem)?;
    let kind = if format == ImageFormat::Png {
        "PNG"
    } else {
        "JPEG"
    };
    let broken = |e: image::ImageError| problem(format!("not a readable {kind} image: {e}"));
    if format == ImageFormat::Jpeg && !jpeg_complete(bytes) {
        return Err(problem(
            "not a readable JPEG image: the file ends before the image does (truncated?)".into(),
        ));
    }
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits);
        reader
    };
    // The header alone first: a small file may claim billions of pixels.
    let (width, height) = reader().into_dimensions().map_err(broken)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(problem(format!(
            "the image is {width}x{height} ({} megapixels); at most {} megapixels are taken",
            pixels / 1_000_000,
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut decoder = reader().into_decoder().map_err(broken)?;
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(problem(format!(
            "the image is {width}x{height} at {:?}: too large to decode; save it with 8 bits per channel",
            decoder.color_type()
        )));
    }
    let orientation = decoder.orientation().map_err(broken)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(broken)?;
    image.apply_orientation(orientation);
    make(&image, slot).map_err(problem)
}

/// Crops and scales a decoded image into the slot's files.
fn make(image: &DynamicImage, slot: Slot) -> Result<Fitted, String> {
    let (w, h) = (image.width(), image.height());
    let files = slot.files();
    let largest = files.iter().map(|(_, s)| *s).max().unwrap_or(1);
    let (kept, sizes): (Rect, Vec<(u32, u32)>) = match slot.shape() {
        Shape::Cover(pw, ph) => {
            let kept = centre_crop(w, h, pw, ph);
            let sizes = files.iter().map(|(_, s)| (pw * s, ph * s)).collect();
            (kept, sizes)
        }
        Shape::Within(pw, ph) => {
            // One point size for every scale, so 1x, 2x and 3x show the same logo.
            let k = (f64::from(pw) / f64::from(w)).min(f64::from(ph) / f64::from(h));
            let sizes = files
                .iter()
                .map(|(_, s)| {
                    let side = |source: u32, bound: u32| {
                        ((f64::from(source) * k * f64::from(*s)).round() as u32).clamp(1, bound * s)
                    };
                    (side(w, pw), side(h, ph))
                })
                .collect();
            let all = Rect {
                x: 0,
                y: 0,
                width: w,
                height: h,
            };
            (all, sizes)
        }
    };
    let (big_w, big_h) = sizes.last().copied().unwrap_or((1, 1));
    let upscale =
        (f64::from(big_w) / f64::from(kept.width)).max(f64::from(big_h) / f64::from(kept.height));
    if upscale > MAX_UPSCALE {
        // The smallest upload that would do, at the kept part's ratio.
        let need_w = (f64::from(big_w) / MAX_UPSCALE).ceil() as u32;
        let need_h = (f64::from(big_h) / MAX_UPSCALE).ceil() as u32;
        return Err(format!(
            "the image is {w}x{h}: too small for the {} ({big_w}x{big_h} at {largest}x), which would \
             enlarge it {upscale:.1} times; give at least {need_w}x{need_h} pixels \
             (at most {MAX_UPSCALE} times enlargement)",
            slot.name()
        ));
    }
    let cropped = if (kept.width, kept.height) == (w, h) {
        image.clone()
    } else {
        image.crop_imm(kept.x, kept.y, kept.width, kept.height)
    };
    // Flat pixels: RGBA where the upload has transparency, else RGB (a JPEG never has it).
    let cropped = if cropped.color().has_alpha() {
        DynamicImage::ImageRgba8(cropped.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(cropped.to_rgb8())
    };
    // The largest from the upload; the smaller ones from it, which costs a fraction of
    // resizing the upload again and looks the same.
    let biggest = cropped.resize_exact(big_w, big_h, FilterType::Lanczos3);
    let mut out = Vec::with_capacity(files.len());
    for ((name, _), (ow, oh)) in files.iter().zip(&sizes) {
        let scaled = if (*ow, *oh) == (big_w, big_h) {
            biggest.clone()
        } else {
            biggest.resize_exact(*ow, *oh, FilterType::Lanczos3)
        };
        out.push(FittedFile {
            name,
            width: *ow,
            height: *oh,
            png: encode(&scaled)?,
        });
    }
    Ok(Fitted {
        slot,
        source_width: w,
        source_height: h,
        kept,
        files: out,
    })
}

/// The largest centred rectangle of the ratio `rw`:`rh` inside `w`x`h`.
fn centre_crop(w: u32, h: u32, rw: u32, rh: u32) -> Rect {
    // Compared in u64: w * rh overflows u32 for large uploads.
    let (w64, h64, rw64, rh64) = (u64::from(w), u64::from(h), u64::from(rw), u64::from(rh));
    let (cw, ch) = if w64 * rh64 > h64 * rw64 {
        // Wider than the ratio: full height, the sides cut.
        (((h64 * rw64 + rh64 / 2) / rh64).clamp(1, w64), h64)
    } else {
        (w64, ((w64 * rh64 + rw64 / 2) / rw64).clamp(1, h64))
    };
    let (cw, ch) = (cw as u32, ch as u32);
    Rect {
        x: (w - cw) / 2,
        y: (h - ch) / 2,
        width: cw,
        height: ch,
    }
}

fn encode(image: &DynamicImage) -> Result<Vec<u8>, String> {
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Default,
        image::codecs::png::FilterType::Adaptive,
    );
    image
        .write_with_encoder(encoder)
        .map_err(|e| format!("the resized image could not be written as PNG: {e}"))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::images::check;
    use image::{ImageBuffer, Rgb, Rgba};

    /// A gradient, so that resizing has something to do and JPEG something to compress.
    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(width, height, |x, y| {
            Rgba([(x % 256) as u8, (y % 256) as u8, 90, (x % 200) as u8 + 55])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgba8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn sizes(fitted: &Fitted) -> Vec<(&str, u32, u32)> {
        fitted
            .files
            .iter()
            .map(|f| (f.name, f.width, f.height))
            .collect()
    }

    /// The files, with an icon when the slot is not the icon, pass the template check;
    /// and each file's header says the size the fit reports.
    fn assert_checks(fitted: &Fitted) {
        let mut images = Images::new();
        if fitted.slot != Slot::Icon {
            fit(&png(100, 100), Slot::Icon)
                .unwrap()
                .apply_to(&mut images);
        }
        fitted.apply_to(&mut images);
        assert_eq!(check(&images, "/images"), vec![]);
        for f in &fitted.files {
            let decoded = image::load_from_memory(&f.png).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (f.width, f.height));
        }
    }

    #[test]
    fn a_large_jpeg_logo_fits_within_apples_logo_box() {
        let fitted = fit(&jpeg(3000, 2000), Slot::Logo).unwrap();
        // 3:2 inside 160x50 points: the height decides, 75x50.
        assert_eq!(
            sizes(&fitted),
            [
                ("logo.png", 75, 50),
                ("logo@2x.png", 150, 100),
                ("logo@3x.png", 225, 150)
            ]
        );
        assert_eq!(
            fitted.kept,
            Rect {
                x: 0,
                y: 0,
                width: 3000,
                height: 2000
            }
        );
        assert_eq!(fitted.preview().name, "logo@2x.png");
        assert_checks(&fitted);
    }

    #[test]
    fn fixed_ratio_slots_are_centre_cropped_to_their_exact_sizes() {
        let photo = jpeg(3000, 2000);
        let icon = fit(&photo, Slot::Icon).unwrap();
        assert_eq!(
            sizes(&icon),
            [
                ("icon.png", 29, 29),
                ("icon@2x.png", 58, 58),
                ("icon@3x.png", 87, 87)
            ]
        );
        assert_eq!(
            icon.kept,
            Rect {
                x: 500,
                y: 0,
                width: 2000,
                height: 2000
            }
        );
        assert_checks(&icon);

        let strip = fit(&photo, Slot::Strip).unwrap();
        assert_eq!(
            sizes(&strip),
            [
                ("strip.png", 375, 144),
                ("strip@2x.png", 750, 288),
                ("strip@3x.png", 1125, 432)
            ]
        );
        // 375:144 of a 3000-wide image is 1152 high, centred.
        assert_eq!(
            strip.kept,
            Rect {
                x: 0,
                y: 424,
                width: 3000,
                height: 1152
            }
        );
        assert_checks(&strip);

        let logo = fit(&png(1000, 1400), Slot::GoogleLogo).unwrap();
        assert_eq!(sizes(&logo), [(GOOGLE_LOGO, 660, 660)]);
        assert_eq!(logo.kept.y, 200);
        assert_checks(&logo);

        let hero = fit(&png(2000, 900), Slot::GoogleHero).unwrap();
        assert_eq!(sizes(&hero), [(GOOGLE_HERO, 1032, 336)]);
        assert_checks(&hero);
    }

    #[test]
    fn transparency_is_kept_and_jpegs_become_opaque_pngs() {
        let logo = fit(&png(600, 200), Slot::Logo).unwrap();
        let decoded = image::load_from_memory(&logo.files[0].png).unwrap();
        assert!(decoded.color().has_alpha());
        let icon = fit(&jpeg(300, 300), Slot::Icon).unwrap();
        let decoded = image::load_from_memory(&icon.files[0].png).unwrap();
        assert!(!decoded.color().has_alpha());
    }

    fn refusal(bytes: &[u8], slot: Slot) -> String {
        let problem = fit(bytes, slot).err().expect("refused");
        assert_eq!(problem.pointer, slot.pointer());
        problem.detail
    }

    #[test]
    fn too_small_uploads_are_refused_with_the_size_needed() {
        // 87x87 at 3x from 40x40 would be 2.2 times: refused; 44x44 is just within.
        let detail = refusal(&png(40, 40), Slot::Icon);
        assert!(detail.contains("give at least 44x44 pixels"), "{detail}");
        assert!(fit(&png(44, 44), Slot::Icon).is_ok());
        let detail = refusal(&jpeg(300, 300), Slot::GoogleLogo);
        assert!(detail.contains("give at least 330x330"), "{detail}");
        // A sliver cropped to a square is as small as its short side.
        assert!(refusal(&png(4000, 10), Slot::Icon).contains("too small"));
    }

    #[test]
    fn other_formats_and_broken_files_are_refused_with_a_reason() {
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
        assert!(refusal(gif, Slot::Logo).contains("this file is a GIF image"));
        assert!(refusal(b"", Slot::Logo).contains("empty"));
        assert!(refusal(b"<svg xmlns=...>", Slot::Logo).contains("only PNG and JPEG"));

        let mut cut = jpeg(800, 600);
        cut.truncate(cut.len() / 3);
        let detail = refusal(&cut, Slot::Logo);
        assert!(detail.starts_with("not a readable JPEG image"), "{detail}");

        let mut cut = png(800, 600);
        cut.truncate(cut.len() / 2);
        let detail = refusal(&cut, Slot::Strip);
        assert!(detail.starts_with("not a readable PNG image"), "{detail}");

        // A header cut inside IHDR.
        assert!(refusal(&png(800, 600)[..20], Slot::Icon).starts_with("not a readable PNG"));
    }

    #[test]
    fn a_header_claiming_a_huge_image_is_refused_before_decoding() {
        // A valid 1x1 PNG whose IHDR claims 100000x100000 (CRC fixed so the header reads).
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let detail = refusal(&bomb, Slot::Logo);
        assert_eq!(
            detail,
            "the image is 100000x100000 (10000 megapixels); at most 40 megapixels are taken"
        );
        // Just over the limit, a real (flat, so small) PNG.
        let flat = DynamicImage::new_luma8(8000, 5001);
        let mut bytes = Vec::new();
        flat.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        assert!(refusal(&bytes, Slot::Strip).contains("at most 40 megapixels"));
    }

    /// PNG's CRC-32 (ISO 3309), to forge a header the decoder believes.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn slots_parse_from_their_names() {
        for slot in Slot::ALL {
            assert_eq!(Slot::parse(slot.name()), Some(slot));
        }
        assert_eq!(Slot::parse("background"), None);
    }
}
