//! Why the template validator refused a part of a template, as data: the API renders a
//! [`Reason`] into the English it has always answered (`Display`, kept word for word:
//! clients may match on it), the console into the staff member's language from its
//! message catalogue (`console::i18n::reason_text`). Parameters (lengths, limits, keys)
//! travel as values, so no rendering has to parse another's text.

use super::placeholder;
use crate::domain::TemplateKind;
use crate::problem::FieldProblem;
use std::fmt;

/// One problem of a template: where (a JSON pointer into the document) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateProblem {
    pub pointer: String,
    pub reason: Reason,
}

impl TemplateProblem {
    pub fn new(pointer: impl Into<String>, reason: Reason) -> Self {
        TemplateProblem {
            pointer: pointer.into(),
            reason,
        }
    }
}

impl From<TemplateProblem> for FieldProblem {
    fn from(p: TemplateProblem) -> FieldProblem {
        FieldProblem::new(p.pointer, p.reason.to_string())
    }
}

/// The problems in the API's form (English details).
pub fn english(problems: Vec<TemplateProblem>) -> Vec<FieldProblem> {
    problems.into_iter().map(FieldProblem::from).collect()
}

/// The size an image of a slot must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSize {
    /// Apple: exactly this many pixels.
    Exact(u32, u32),
    /// Apple: at most this many pixels each way.
    AtMost(u32, u32),
    /// Google's logo: a square from `min` to `max` pixels a side.
    Square { min: u32, max: u32 },
    /// Google's hero: the ratio of `w`x`h`, from that size to twice it.
    Ratio { w: u32, h: u32 },
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ImageSize::Exact(w, h) => write!(f, "Apple Wallet expects {w}x{h}"),
            ImageSize::AtMost(w, h) => write!(f, "Apple Wallet expects at most {w}x{h}"),
            ImageSize::Square { min, max } => write!(
                f,
                "Google Wallet expects a square of at least {min}x{min} \
                 ({min}x{min} recommended, at most {max}x{max})"
            ),
            ImageSize::Ratio { w, h } => write!(
                f,
                "Google Wallet expects {w}x{h} (3:1; up to {}x{} at the same ratio)",
                2 * w,
                2 * h
            ),
        }
    }
}

/// A PNG's pixel format, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub bit_depth: u8,
    /// PNG colour type: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA.
    pub color_type: u8,
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let colour = match self.color_type {
            0 => "grey",
            2 => "RGB",
            3 => "palette",
            4 => "grey+alpha",
            6 => "RGBA",
            _ => "unknown colour type",
        };
        write!(f, "{}-bit {colour}", self.bit_depth)
    }
}

/// Every reason the validator gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Required,
    Empty,
    TooLong {
        chars: usize,
        max: usize,
    },
    ControlCharacters,
    NotString,
    UnknownPlaceholder {
        name: String,
        kind: TemplateKind,
    },
    UnclosedPlaceholder,
    UnknownKey {
        known: &'static [&'static str],
    },
    BadColor {
        text: String,
    },
    NotDateTime,
    NotObject,
    BadKind,
    KindRequired,
    ColorsRequired,
    NotFieldList,
    TooManyFields {
        group: &'static str,
        max: usize,
    },
    NotField,
    ReservedKey {
        key: String,
    },
    DuplicateKey {
        key: String,
    },
    BadAlignment {
        allowed: &'static [&'static str],
    },
    NotFieldGroups,
    MissingTranslation {
        key: String,
        language: String,
    },
    NoValueMarker,
    BadBarcodeFormat {
        format: String,
        allowed: &'static [&'static str],
    },
    NotBarcode,
    TooManyLocations {
        max: usize,
    },
    NotLocation,
    CoordinateRequired {
        limit: u32,
    },
    AltitudeNotNumber,
    NotLocationList,
    BadLanguage,
    NotTranslations,
    TranslationTooLong {
        max: usize,
    },
    NotLocalizations,
    IconRequired,
    UnknownImage,
    NotPng {
        error: String,
    },
    WrongImageSize {
        file: String,
        width: u32,
        height: u32,
        pixels: PixelFormat,
        expected: ImageSize,
    },
    /// The document passed every check yet did not read as a template (a check missing
    /// here): the reader's own words.
    Unreadable {
        error: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Required => f.write_str("required"),
            Reason::Empty => f.write_str("must not be empty"),
            Reason::TooLong { chars, max } => {
                write!(f, "text too long: {chars} characters, at most {max}")
            }
            Reason::ControlCharacters => f.write_str("must not contain control characters"),
            Reason::NotString => f.write_str("must be a string"),
            Reason::UnknownPlaceholder { name, kind } => write!(
                f,
                "unknown placeholder {{{{{name}}}}} for a {} template; known: {}",
                kind.as_str(),
                placeholder::allowed(*kind).join(", ")
            ),
            Reason::UnclosedPlaceholder => {
                f.write_str("a placeholder opened with {{ is not closed with }}")
            }
            Reason::UnknownKey { known } => {
                write!(f, "unknown key; known keys: {}", known.join(", "))
            }
            Reason::BadColor { text } => {
                write!(f, "bad color {text:?}: use #rrggbb or rgb(r, g, b)")
            }
            Reason::NotDateTime => f.write_str(
                "must be an RFC 3339 date-time with a time zone, e.g. 2027-01-31T23:59:00+01:00",
            ),
            Reason::NotObject => f.write_str("a template is a JSON object"),
            Reason::BadKind => f.write_str("must be \"loyalty\" or \"gift_card\""),
            Reason::KindRequired => f.write_str("required: \"loyalty\" or \"gift_card\""),
            Reason::ColorsRequired => {
                f.write_str("required: an object with background, foreground and optionally label")
            }
            Reason::NotFieldList => f.write_str("must be an array of fields"),
            Reason::TooManyFields { group, max } => {
                write!(f, "at most {max} {group} fields fit on a store card")
            }
            Reason::NotField => f.write_str("a field is an object with key, label and value"),
            Reason::ReservedKey { key } => write!(
                f,
                "{key:?} is reserved: the service writes its own back field of that key for merchant messages"
            ),
            Reason::DuplicateKey { key } => write!(
                f,
                "duplicate field key {key:?}: keys must be unique across all groups"
            ),
            Reason::BadAlignment { allowed } => write!(f, "must be one of {}", allowed.join(", ")),
            Reason::NotFieldGroups => f.write_str("must be an object of field groups"),
            Reason::MissingTranslation { key, language } => {
                write!(f, "localization key {key:?} is missing in {language:?}")
            }
            Reason::NoValueMarker => {
                f.write_str("a change message must contain %@ where the new value goes")
            }
            Reason::BadBarcodeFormat { format, allowed } => write!(
                f,
                "unsupported barcode format {format:?}; use one of {}",
                allowed.join(", ")
            ),
            Reason::NotBarcode => f.write_str("must be an object with format, message and alt_text"),
            Reason::TooManyLocations { max } => write!(f, "Wallet uses at most {max} locations"),
            Reason::NotLocation => {
                f.write_str("a location is an object with latitude and longitude")
            }
            Reason::CoordinateRequired { limit } => {
                write!(f, "required: a number from -{limit} to {limit}")
            }
            Reason::AltitudeNotNumber => f.write_str("must be a number (meters)"),
            Reason::NotLocationList => f.write_str("must be an array"),
            Reason::BadLanguage => f.write_str("a language is a code such as en, ru or pt-BR"),
            Reason::NotTranslations => f.write_str("must be an object of key -> text"),
            Reason::TranslationTooLong { max } => {
                write!(f, "text too long: at most {max} characters")
            }
            Reason::NotLocalizations => {
                f.write_str("must be an object: language -> (key -> text)")
            }
            Reason::IconRequired => f.write_str(
                "an icon (icon.png, 29x29 pixels) is required: Wallet will not show a pass without it",
            ),
            Reason::UnknownImage => f.write_str(
                "unknown image name: use icon, logo or strip, optionally @2x or @3x, with .png; \
                 or google_logo.png, google_hero.png",
            ),
            Reason::NotPng { error } => write!(f, "not a valid PNG image: {error}"),
            Reason::WrongImageSize {
                file,
                width,
                height,
                pixels,
                expected,
            } => write!(f, "{file} is {width}x{height} ({pixels}); {expected}"),
            Reason::Unreadable { error } => f.write_str(error),
        }
    }
}

impl Reason {
    /// One reason of every kind, for tests that every rendering covers them all (see
    /// `kinds_are_all_exemplified`).
    pub fn examples() -> Vec<Reason> {
        vec![
            Reason::Required,
            Reason::Empty,
            Reason::TooLong {
                chars: 201,
                max: 200,
            },
            Reason::ControlCharacters,
            Reason::NotString,
            Reason::UnknownPlaceholder {
                name: "pointz".into(),
                kind: TemplateKind::Loyalty,
            },
            Reason::UnclosedPlaceholder,
            Reason::UnknownKey {
                known: &["background", "foreground", "label"],
            },
            Reason::BadColor {
                text: "blue-ish".into(),
            },
            Reason::NotDateTime,
            Reason::NotObject,
            Reason::BadKind,
            Reason::KindRequired,
            Reason::ColorsRequired,
            Reason::NotFieldList,
            Reason::TooManyFields {
                group: "secondary",
                max: 4,
            },
            Reason::NotField,
            Reason::ReservedKey {
                key: "merchant_message".into(),
            },
            Reason::DuplicateKey {
                key: "points".into(),
            },
            Reason::BadAlignment {
                allowed: &["left", "center", "right", "natural"],
            },
            Reason::NotFieldGroups,
            Reason::MissingTranslation {
                key: "points_label".into(),
                language: "ru".into(),
            },
            Reason::NoValueMarker,
            Reason::BadBarcodeFormat {
                format: "ean13".into(),
                allowed: &["qr", "pdf417", "aztec", "code128"],
            },
            Reason::NotBarcode,
            Reason::TooManyLocations { max: 10 },
            Reason::NotLocation,
            Reason::CoordinateRequired { limit: 90 },
            Reason::AltitudeNotNumber,
            Reason::NotLocationList,
            Reason::BadLanguage,
            Reason::NotTranslations,
            Reason::TranslationTooLong { max: 2000 },
            Reason::NotLocalizations,
            Reason::IconRequired,
            Reason::UnknownImage,
            Reason::NotPng {
                error: "no PNG signature".into(),
            },
            Reason::WrongImageSize {
                file: "icon.png".into(),
                width: 30,
                height: 29,
                pixels: PixelFormat {
                    bit_depth: 8,
                    color_type: 6,
                },
                expected: ImageSize::Exact(29, 29),
            },
            Reason::Unreadable {
                error: "invalid type".into(),
            },
        ]
    }

    /// The variant's position in the enum: the exhaustive match makes a new variant a
    /// compile error here, and `kinds_are_all_exemplified` then asks for its example.
    pub fn kind_index(&self) -> usize {
        match self {
            Reason::Required => 0,
            Reason::Empty => 1,
            Reason::TooLong { .. } => 2,
            Reason::ControlCharacters => 3,
            Reason::NotString => 4,
            Reason::UnknownPlaceholder { .. } => 5,
            Reason::UnclosedPlaceholder => 6,
            Reason::UnknownKey { .. } => 7,
            Reason::BadColor { .. } => 8,
            Reason::NotDateTime => 9,
            Reason::NotObject => 10,
            Reason::BadKind => 11,
            Reason::KindRequired => 12,
            Reason::ColorsRequired => 13,
            Reason::NotFieldList => 14,
            Reason::TooManyFields { .. } => 15,
            Reason::NotField => 16,
            Reason::ReservedKey { .. } => 17,
            Reason::DuplicateKey { .. } => 18,
            Reason::BadAlignment { .. } => 19,
            Reason::NotFieldGroups => 20,
            Reason::MissingTranslation { .. } => 21,
            Reason::NoValueMarker => 22,
            Reason::BadBarcodeFormat { .. } => 23,
            Reason::NotBarcode => 24,
            Reason::TooManyLocations { .. } => 25,
            Reason::NotLocation => 26,
            Reason::CoordinateRequired { .. } => 27,
            Reason::AltitudeNotNumber => 28,
            Reason::NotLocationList => 29,
            Reason::BadLanguage => 30,
            Reason::NotTranslations => 31,
            Reason::TranslationTooLong { .. } => 32,
            Reason::NotLocalizations => 33,
            Reason::IconRequired => 34,
            Reason::UnknownImage => 35,
            Reason::NotPng { .. } => 36,
            Reason::WrongImageSize { .. } => 37,
            Reason::Unreadable { .. } => 38,
        }
    }

    /// How many kinds [`Reason::kind_index`] numbers.
    pub const KINDS: usize = 39;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_all_exemplified() {
        let mut seen: Vec<usize> = Reason::examples().iter().map(Reason::kind_index).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..Reason::KINDS).collect::<Vec<_>>());
    }

    #[test]
    fn the_english_is_the_apis_text_of_before() {
        let text = |r: Reason| r.to_string();
        assert_eq!(
            text(Reason::TooLong {
                chars: 201,
                max: 200
            }),
            "text too long: 201 characters, at most 200"
        );
        assert_eq!(
            text(Reason::UnknownPlaceholder {
                name: "pointz".into(),
                kind: TemplateKind::Loyalty
            }),
            "unknown placeholder {{pointz}} for a loyalty template; known: merchant.name, \
             program.name, member.name, member.first_name, card_number, points, tier, referral_url, \
             expiring_points, expiry_date"
        );
        assert_eq!(
            text(Reason::CoordinateRequired { limit: 180 }),
            "required: a number from -180 to 180"
        );
        assert_eq!(
            text(Reason::WrongImageSize {
                file: "logo.png".into(),
                width: 200,
                height: 60,
                pixels: PixelFormat {
                    bit_depth: 8,
                    color_type: 6
                },
                expected: ImageSize::AtMost(160, 50),
            }),
            "logo.png is 200x60 (8-bit RGBA); Apple Wallet expects at most 160x50"
        );
        assert_eq!(
            text(Reason::MissingTranslation {
                key: "k".into(),
                language: "ru".into()
            }),
            "localization key \"k\" is missing in \"ru\""
        );
    }
}
