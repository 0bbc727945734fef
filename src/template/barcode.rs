//! Real, scannable barcodes for the designer's preview: PDF417, Aztec and Code 128 drawn
//! as SVG from the module matrix `rxing` (a port of ZXing, the encoder most scanners are
//! tested against) computes. QR codes keep `public_pages::qr`, which the join pages use.
//!
//! The SVG is one `<path>` of black rectangles on a white `<rect>`, with a quiet zone, and
//! no style attribute (the console's CSP allows none). Its `viewBox` is in modules, so the
//! page scales it without blurring.

use rxing::{BarcodeFormat, EncodeHints, MultiFormatWriter, Writer};

/// The linear and stacked formats a template may name besides QR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf417,
    Aztec,
    Code128,
}

impl Format {
    /// From Apple's (`PKBarcodeFormatPDF417`) or Google's (`PDF_417`) name.
    pub fn of_wallet(name: &str) -> Option<Format> {
        match name {
            "PKBarcodeFormatPDF417" | "PDF_417" => Some(Format::Pdf417),
            "PKBarcodeFormatAztec" | "AZTEC" => Some(Format::Aztec),
            "PKBarcodeFormatCode128" | "CODE_128" => Some(Format::Code128),
            _ => None,
        }
    }

    fn rxing(self) -> BarcodeFormat {
        match self {
            Format::Pdf417 => BarcodeFormat::PDF_417,
            Format::Aztec => BarcodeFormat::AZTEC,
            Format::Code128 => BarcodeFormat::CODE_128,
        }
    }

    /// Light modules around the symbol: ten for Code 128 (its specification's minimum),
    /// two for PDF417 (rows are quiet on their own), four for Aztec (none is required).
    fn quiet_zone(self) -> u32 {
        match self {
            Format::Code128 => 10,
            Format::Pdf417 => 2,
            Format::Aztec => 4,
        }
    }
}

/// A drawn symbol: dark modules as (x, y, width, height) rectangles, in modules, inside a
/// `width` x `height` field that includes the quiet zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<(u32, u32, u32, u32)>,
}

/// Height of Code 128's bars, in modules: about a fifth of a typical card number's width,
/// as Wallet draws them.
const CODE128_BAR_HEIGHT: u32 = 40;

/// The symbol for `message`, or why it cannot be encoded (a Code 128 message outside
/// ASCII, a message too long for the format).
pub fn symbol(format: Format, message: &str) -> Result<Symbol, String> {
    let hints = EncodeHints {
        Margin: Some("0".into()),
        // Apple's `messageEncoding` of every pass is ISO-8859-1.
        CharacterSet: Some("ISO-8859-1".into()),
        ..Default::default()
    };
    let matrix = MultiFormatWriter
        .encode_with_hints(message, &format.rxing(), 0, 0, &hints)
        .map_err(|e| e.to_string())?;
    let quiet = format.quiet_zone();
    let (w, h) = (matrix.width(), matrix.height());
    let mut bars = Vec::new();
    if format == Format::Code128 {
        // Every row of a linear code is the same: one row, drawn as full-height bars.
        for (x, run) in runs(|x| matrix.get(x, 0), w) {
            bars.push((x + quiet, quiet, run, CODE128_BAR_HEIGHT));
        }
        return Ok(Symbol {
            width: w + 2 * quiet,
            height: CODE128_BAR_HEIGHT + 2 * quiet,
            bars,
        });
    }
    for y in 0..h {
        for (x, run) in runs(|x| matrix.get(x, y), w) {
            // A run continuing the one right above it (PDF417's rows are several modules
            // tall) makes that one taller: fewer, larger rectangles.
            match bars
                .iter_mut()
                .rev()
                .take_while(|b| b.1 + b.3 >= y + quiet)
                .find(|b| b.0 == x + quiet && b.2 == run && b.1 + b.3 == y + quiet)
            {
                Some(above) => above.3 += 1,
                None => bars.push((x + quiet, y + quiet, run, 1)),
            }
        }
    }
    Ok(Symbol {
        width: w + 2 * quiet,
        height: h + 2 * quiet,
        bars,
    })
}

/// The dark runs of one row: (start, length).
fn runs(dark: impl Fn(u32) -> bool, width: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut x = 0;
    while x < width {
        if dark(x) {
            let start = x;
            while x < width && dark(x) {
                x += 1;
            }
            out.push((start, x - start));
        } else {
            x += 1;
        }
    }
    out
}

impl Symbol {
    /// The symbol as an inline `<svg>` element, labelled for screen readers, sized at two
    /// CSS pixels a module (what a phone's camera reads off a laptop screen; the page's
    /// stylesheet may shrink it to fit).
    pub fn svg(&self, label: &str) -> String {
        let mut path = String::with_capacity(self.bars.len() * 16);
        for (x, y, w, h) in &self.bars {
            path.push_str(&format!("M{x} {y}h{w}v{h}h-{w}z"));
        }
        let label = maud::html! { (label) }.into_string();
        format!(
            "<svg class=\"pf-barcode-symbol\" xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"{pw}\" height=\"{ph}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{label}\" shape-rendering=\"crispEdges\">\
             <rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"></rect><path fill=\"#000\" d=\"{path}\"></path></svg>",
            w = self.width,
            h = self.height,
            pw = 2 * self.width,
            ph = 2 * self.height,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<path>` of an SVG drawn by [`Symbol::svg`], read back into a grey image at
    /// `scale` pixels a module: what a scanner would see of the page.
    fn rasterize(svg: &str, scale: u32) -> (Vec<u8>, u32, u32) {
        let view = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
        let mut dims = view.split('"').next().unwrap().split(' ');
        let w: u32 = dims.next().unwrap().parse().unwrap();
        let h: u32 = dims.next().unwrap().parse().unwrap();
        let (pw, ph) = (w * scale, h * scale);
        let mut luma = vec![255u8; (pw * ph) as usize];
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for rect in d.split('M').filter(|r| !r.is_empty()) {
            let rect = rect.trim_end_matches('z');
            let (xy, rest) = rect.split_once('h').unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let (rw, rest) = rest.split_once('v').unwrap();
            let rh = rest.split('h').next().unwrap();
            let [x, y, rw, rh]: [u32; 4] = [x, y, rw, rh].map(|n| n.parse().unwrap());
            for py in y * scale..(y + rh) * scale {
                for px in x * scale..(x + rw) * scale {
                    luma[(py * pw + px) as usize] = 0;
                }
            }
        }
        (luma, pw, ph)
    }

    fn decoded(format: Format, message: &str) -> String {
        let svg = symbol(format, message).unwrap().svg("test");
        let (luma, w, h) = rasterize(&svg, 3);
        rxing::helpers::detect_in_luma(luma, w, h, Some(format.rxing()))
            .unwrap_or_else(|e| panic!("{format:?} {message:?} does not read back: {e}"))
            .getText()
            .to_string()
    }

    #[test]
    fn what_is_drawn_scans_back_to_the_message() {
        for (format, message) in [
            (Format::Code128, "2000 1234 5678"),
            (Format::Code128, "6000000012345678"),
            (Format::Pdf417, "2000 1234 5678"),
            (Format::Pdf417, "https://cards.example/r/SAMPLE"),
            (Format::Aztec, "6000 0000 1234 5678"),
        ] {
            assert_eq!(decoded(format, message), message, "{format:?}");
        }
    }

    #[test]
    fn a_message_a_format_cannot_carry_is_refused() {
        assert!(symbol(Format::Code128, "карта").is_err());
        assert!(symbol(Format::Code128, "").is_err());
    }

    #[test]
    fn the_svg_is_labelled_and_has_no_style() {
        let svg = symbol(Format::Pdf417, "x").unwrap().svg("PDF417 <code>");
        assert!(svg.contains("aria-label=\"PDF417 &lt;code&gt;\""));
        assert!(!svg.contains("style"));
    }
}
