//! QR codes for referral and join links.
//!
//! Both renderings are drawn from the same module matrix produced by the
//! `qrcode` crate (error-correction level M, automatic version), with the
//! standard quiet zone of four light modules on every side:
//!
//! * [`svg`] gives a standalone SVG document whose `viewBox` is measured in
//!   modules, so it scales crisply to any size;
//! * [`png`] gives a 1-bit grayscale PNG, each module `scale` pixels square.

use std::fmt;

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the symbol, as the QR specification asks for.
const QUIET_ZONE: usize = 4;
/// The smallest width/height, in CSS pixels, written on the SVG root.
const MIN_SVG_PX: usize = 256;
/// Bounds for the PNG module size in pixels.
const MIN_SCALE: u32 = 1;
const MAX_SCALE: u32 = 32;

/// The text could not be turned into a QR code (typically: it is too long).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrError(String);

impl fmt::Display for QrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot make a QR code: {}", self.0)
    }
}

impl std::error::Error for QrError {}

impl From<qrcode::types::QrError> for QrError {
    fn from(e: qrcode::types::QrError) -> Self {
        QrError(e.to_string())
    }
}

/// The module matrix with the quiet zone included: `size` x `size`, row-major,
/// `true` for a dark module.
struct Matrix {
    size: usize,
    dark: Vec<bool>,
}

impl Matrix {
    fn encode(text: &str) -> Result<Self, QrError> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
        let width = code.width();
        let size = width + 2 * QUIET_ZONE;
        let mut dark = vec![false; size * size];
        for (i, color) in code.to_colors().into_iter().enumerate() {
            if color == Color::Dark {
                let (x, y) = (i % width, i / width);
                dark[(y + QUIET_ZONE) * size + x + QUIET_ZONE] = true;
            }
        }
        Ok(Matrix { size, dark })
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.size + x]
    }
}

/// A standalone SVG document of the QR code for `text`: black modules on a
/// white square, quiet zone of four modules, `viewBox` in module units and
/// `width`/`height` of at least 256 px (a whole number of pixels per module).
pub fn svg(text: &str) -> Result<String, QrError> {
    let m = Matrix::encode(text)?;
    let n = m.size;
    let px = n * MIN_SVG_PX.div_ceil(n);

    let mut d = String::with_capacity(n * n);
    for y in 0..n {
        let mut x = 0;
        while x < n {
            if !m.is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < n && m.is_dark(x, y) {
                x += 1;
            }
            let run = x - start;
            // One horizontal run of dark modules, one module tall.
            d.push_str(&format!("M{start} {y}h{run}v1h-{run}z"));
        }
    }

    Ok(format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" ",
            "width=\"{px}\" height=\"{px}\" viewBox=\"0 0 {n} {n}\" ",
            "shape-rendering=\"crispEdges\">",
            "<rect x=\"0\" y=\"0\" width=\"{n}\" height=\"{n}\" fill=\"#fff\"/>",
            "<path fill=\"#000\" d=\"{d}\"/>",
            "</svg>\n"
        ),
        px = px,
        n = n,
        d = d
    ))
}

/// A 1-bit grayscale PNG of the QR code for `text`: each module `scale`
/// pixels square (clamped to 1..=32), quiet zone of four modules.
pub fn png(text: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let m = Matrix::encode(text)?;
    let scale = scale.clamp(MIN_SCALE, MAX_SCALE) as usize;
    let side = m.size * scale;
    let stride = side.div_ceil(8);

    // 1-bit grayscale: bit set = white, most significant bit first,
    // each row padded to a whole byte.
    let mut data = vec![0u8; stride * side];
    for py in 0..side {
        let row = &mut data[py * stride..(py + 1) * stride];
        for px in 0..side {
            if !m.is_dark(px / scale, py / scale) {
                row[px / 8] |= 0x80 >> (px % 8);
            }
        }
    }

    let side = u32::try_from(side).map_err(|_| QrError("image too large".into()))?;
    let mut out = Vec::new();
    {
        let mut encoder = ::png::Encoder::new(&mut out, side, side);
        encoder.set_color(::png::ColorType::Grayscale);
        encoder.set_depth(::png::BitDepth::One);
        encoder.set_compression(::png::Compression::Best);
        let mut writer = encoder
            .write_header()
            .map_err(|e| QrError(format!("PNG encoding failed: {e}")))?;
        writer
            .write_image_data(&data)
            .map_err(|e| QrError(format!("PNG encoding failed: {e}")))?;
        writer
            .finish()
            .map_err(|e| QrError(format!("PNG encoding failed: {e}")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    const URL: &str = "http://127.0.0.1:8080/r/ABCD2345";
    const CYRILLIC: &str = "https://пример.рф/присоединиться?имя=Ёлка&код=ЖЭЮЯ";

    /// Decode a PNG into (width, height, 8-bit luma).
    fn png_to_luma(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = ::png::Decoder::new(bytes);
        decoder.set_transformations(::png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("PNG header");
        let mut buf = vec![0u8; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).expect("PNG frame");
        assert_eq!(frame.color_type, ::png::ColorType::Grayscale);
        assert_eq!(frame.bit_depth, ::png::BitDepth::Eight);
        let (w, h) = (frame.width as usize, frame.height as usize);
        buf.truncate(frame.line_size * h);
        let luma = buf
            .chunks(frame.line_size)
            .flat_map(|row| row[..w].iter().copied())
            .collect();
        (w, h, luma)
    }

    /// Find exactly one QR code in a luma image and return its text.
    fn decode_luma(w: usize, h: usize, luma: &[u8]) -> String {
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "expected exactly one QR code");
        let (meta, text) = grids[0].decode().expect("QR code decodes");
        assert_eq!(meta.ecc_level, 0, "error correction level M");
        text
    }

    fn decode_png(bytes: &[u8]) -> String {
        let (w, h, luma) = png_to_luma(bytes);
        decode_luma(w, h, &luma)
    }

    #[test]
    fn png_decodes_to_the_url() -> TestResult {
        let bytes = png(URL, 4)?;
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(decode_png(&bytes), URL);
        Ok(())
    }

    #[test]
    fn png_decodes_to_cyrillic_text() -> TestResult {
        let bytes = png(CYRILLIC, 3)?;
        assert_eq!(decode_png(&bytes), CYRILLIC);
        Ok(())
    }

    #[test]
    fn png_has_quiet_zone_and_exact_module_size() -> TestResult {
        let scale = 5;
        let (w, h, luma) = png_to_luma(&png(URL, scale)?);
        assert_eq!(w, h);
        let modules = w / scale as usize;
        assert_eq!(modules * scale as usize, w);
        assert_eq!(
            (modules - 2 * QUIET_ZONE - 17) % 4,
            0,
            "21, 25, ... modules"
        );
        let q = QUIET_ZONE * scale as usize;
        for y in 0..h {
            for x in 0..w {
                let inside = (q..w - q).contains(&x) && (q..h - q).contains(&y);
                if !inside {
                    assert_eq!(luma[y * w + x], 255, "quiet zone must be white");
                }
            }
        }
        // The top-left finder pattern starts right after the quiet zone.
        assert_eq!(luma[q * w + q], 0);
        assert_eq!(luma[(q - 1) * w + (q - 1)], 255);
        Ok(())
    }

    #[test]
    fn png_scale_is_clamped() -> TestResult {
        let size = |scale| -> TestResult<usize> { Ok(png_to_luma(&png(URL, scale)?).0) };
        let one = size(1)?;
        assert_eq!(size(0)?, one);
        assert_eq!(size(32)?, one * 32);
        assert_eq!(size(1_000)?, one * 32);
        assert_eq!(size(u32::MAX)?, one * 32);
        Ok(())
    }

    /// Parse the SVG path back into the module matrix it draws.
    fn svg_to_matrix(doc: &str) -> TestResult<(usize, Vec<bool>, usize)> {
        let vb = doc.split("viewBox=\"0 0 ").nth(1).ok_or("viewBox")?;
        let n: usize = vb.split(' ').next().ok_or("viewBox size")?.parse()?;
        let d = doc.split(" d=\"").nth(1).ok_or("path d")?;
        let d = &d[..d.find('"').ok_or("end of path d")?];
        let mut dark = vec![false; n * n];
        let mut runs = 0;
        for seg in d.split('M').filter(|s| !s.is_empty()) {
            // "{x} {y}h{run}v1h-{run}z"
            let (x, rest) = seg.split_once(' ').ok_or("x")?;
            let (y, rest) = rest.split_once('h').ok_or("y")?;
            let (run, rest) = rest.split_once("v1h-").ok_or("run")?;
            assert_eq!(rest, format!("{run}z"));
            let (x, y, run): (usize, usize, usize) = (x.parse()?, y.parse()?, run.parse()?);
            assert!(run > 0 && x + run <= n && y < n);
            for i in x..x + run {
                assert!(!dark[y * n + i], "overlapping runs");
                dark[y * n + i] = true;
            }
            runs += 1;
        }
        Ok((n, dark, runs))
    }

    #[test]
    fn svg_is_a_scalable_standalone_document() -> TestResult {
        let doc = svg(URL)?;
        assert!(doc.starts_with("<?xml"));
        assert!(doc.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert!(doc.contains("viewBox=\"0 0 "));
        for attr in ["width", "height"] {
            let v = doc.split(&format!(" {attr}=\"")).nth(1).ok_or(attr)?;
            let v: usize = v[..v.find('"').ok_or(attr)?].parse()?;
            assert!(v >= MIN_SVG_PX);
        }
        assert_eq!(doc.matches("<path").count(), 1);
        assert_eq!(doc.matches("<rect").count(), 1);
        assert!(!doc.contains("<image") && !doc.contains("<script") && !doc.contains("href"));
        Ok(())
    }

    #[test]
    fn svg_draws_exactly_the_module_matrix() -> TestResult {
        for text in [URL, CYRILLIC] {
            let doc = svg(text)?;
            let (n, dark, runs) = svg_to_matrix(&doc)?;
            let m = Matrix::encode(text)?;
            assert_eq!(n, m.size);
            assert_eq!(dark, m.dark);
            let dark_count = m.dark.iter().filter(|d| **d).count();
            assert!(runs > 0 && runs <= dark_count);
            // Cross-check with the crate's own matrix, without the quiet zone.
            let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
            let crate_dark = code
                .to_colors()
                .iter()
                .filter(|c| **c == Color::Dark)
                .count();
            assert_eq!(dark_count, crate_dark);
        }
        Ok(())
    }

    #[test]
    fn svg_rasterised_decodes_to_the_input() -> TestResult {
        for text in [URL, CYRILLIC] {
            let (n, dark, _) = svg_to_matrix(&svg(text)?)?;
            let scale = 4;
            let w = n * scale;
            let luma: Vec<u8> = (0..w * w)
                .map(|i| {
                    let (x, y) = (i % w / scale, i / w / scale);
                    if dark[y * n + x] {
                        0
                    } else {
                        255
                    }
                })
                .collect();
            assert_eq!(decode_luma(w, w, &luma), text);
        }
        Ok(())
    }

    #[test]
    fn too_long_input_is_an_error_not_a_panic() {
        let long = "A".repeat(5_000);
        let Err(e) = svg(&long) else {
            panic!("5,000 characters are too long for a QR code");
        };
        assert!(e.to_string().contains("too long"), "{e}");
        assert!(png(&long, 4).is_err());
        let long_cyr = "Ж".repeat(5_000);
        assert!(svg(&long_cyr).is_err());
        assert!(png(&long_cyr, 32).is_err());
        let _: &dyn std::error::Error = &e;
    }

    #[test]
    fn largest_symbol_still_works() -> TestResult {
        // Close to the byte capacity of version 40-M (2331 bytes).
        let text = "x".repeat(2_300);
        let bytes = png(&text, 1)?;
        let (w, _, _) = png_to_luma(&bytes);
        assert_eq!(w, 177 + 2 * QUIET_ZONE);
        assert!(svg(&text)?.contains("viewBox=\"0 0 185 185\""));
        assert_eq!(decode_png(&png(&text, 2)?), text);
        Ok(())
    }

    #[test]
    fn empty_text_is_a_valid_code() {
        assert!(svg("").is_ok());
        assert!(png("", 1).is_ok());
    }
}
