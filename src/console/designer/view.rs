//! The designer page as drawn on the server: the form over the working copy, the
//! validator's problems next to their controls, the image slots, the live preview, the
//! test pass, publishing and the version history. Handlers gather a [`View`] and call
//! [`render`].

use super::form::{
    control_id, low_contrast, store_card_row, ALIGNMENTS, BARCODES, GROUPS, STORE_CARD_ROW_MAX,
};
use crate::app::AppState;
use crate::console::document::Head;
use crate::console::error::PageError;
use crate::console::i18n::{designer_texts, fill, DesignerTexts};
use crate::console::paging::{cut, pager, PAGE};
use crate::console::session::{Section, StaffSession};
use crate::db::{self, Tenant};
use crate::domain::TemplateKind;
use crate::models::staff::StaffMember;
use crate::models::template_version::{self, Author, Reach, Version};
use crate::problem::ApiError;
use crate::template::fit::Slot;
use crate::template::images::Images;
use crate::template::placeholder;
use crate::template::preview::{self, Preview, PreviewImages, PreviewInput, SampleCard};
use crate::template::reason::TemplateProblem;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use base64::Engine;
use maud::{html, Markup, PreEscaped};
use serde_json::Value as Json;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// What a slot's upload came to, shown next to it.
pub enum SlotNote {
    Fitted {
        png: Vec<u8>,
        width: u32,
        height: u32,
        source: (u32, u32),
    },
    Refused(String),
}

/// A line above the form after an action.
pub enum Notice {
    Saved,
    Refreshed,
    Discarded,
    Rejected(String),
    /// A publish refused because another version was published since: with Discard.
    Stale(String),
}

/// Everything the page shows.
pub struct View {
    pub template_id: String,
    pub document: Json,
    pub images: Images,
    pub is_draft: bool,
    pub based_on: i32,
    pub current: i32,
    pub notice: Option<Notice>,
    pub slot: Option<(Slot, SlotNote)>,
    /// The test pass link, when asked for.
    pub test_link: Option<String>,
    /// The language the preview draws the card in (the form's `preview_lang`).
    pub preview_lang: Option<String>,
    /// The history page: versions older than this one (`?before=`); the newest without.
    pub history_before: Option<i32>,
}

pub fn kind_of(document: &Json) -> TemplateKind {
    match document.get("kind").and_then(Json::as_str) {
        Some("gift_card") => TemplateKind::GiftCard,
        _ => TemplateKind::Loyalty,
    }
}

/// The preview of a document with these images (CPU work: through `image_decodes`).
pub async fn preview_of(
    state: &AppState,
    session: &StaffSession,
    template_id: &str,
    document: Json,
    images: Images,
    language: Option<String>,
) -> Result<(Result<Preview, Vec<TemplateProblem>>, Json, Images), ApiError> {
    let public_url = state.settings.public_url.clone();
    let google = state.google.clone();
    let merchant_id = session.tenant.merchant_id();
    let merchant_name = session.merchant_name.clone();
    let template_id = template_id.to_string();
    state
        .image_decodes
        .run(move || {
            let card = SampleCard::sample(kind_of(&document), &merchant_name, &public_url);
            let result = preview::render(&PreviewInput {
                document: &document,
                images: PreviewImages::Inline(&images),
                card: &card,
                merchant_id,
                template_id: &template_id,
                issuer: google.issuer(),
                public_url: &public_url,
                language: language.as_deref(),
            });
            (result, document, images)
        })
        .await
}

/// The localized name of what a pointer points at, to label the validator's reasons.
pub fn pointer_label(d: &DesignerTexts, pointer: &str) -> String {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let prop = |p: &str| match p {
        "key" => d.key,
        "label" => d.label,
        "value" => d.value,
        "change_message" => d.change_message,
        "text_alignment" => d.alignment,
        "latitude" => d.latitude,
        "longitude" => d.longitude,
        "relevant_text" => d.relevant_text,
        "altitude" => d.altitude,
        _ => "",
    };
    match parts.as_slice() {
        ["name"] => d.name.into(),
        ["description"] => d.description.into(),
        ["organization_name"] => d.organization.into(),
        ["logo_text"] => d.logo_text.into(),
        ["colors", c] => format!("{}: {}", d.colors_title, color_name(d, c)),
        ["fields", g, rest @ ..] => {
            let mut s = group_name(d, g).to_string();
            if let [i, p, ..] = rest {
                let n = i.parse::<usize>().map_or(0, |n| n + 1);
                s = format!("{s} {n}: {}", prop(p));
            }
            s
        }
        ["barcode", p] => format!(
            "{}: {}",
            d.barcode_title,
            match *p {
                "format" => d.barcode_format,
                "message" => d.barcode_message,
                _ => d.barcode_alt,
            }
        ),
        ["localizations", lang, ..] => format!("{} ({lang})", d.translations_title),
        ["locations", i, p, ..] => {
            let n = i.parse::<usize>().map_or(0, |n| n + 1);
            format!("{} {n}: {}", d.locations_title, prop(p))
        }
        ["locations"] => d.locations_title.into(),
        ["expiration_date"] => d.expiration_date.into(),
        ["relevant_date"] => d.relevant_date.into(),
        ["images", slot] => slot_name(d, Slot::parse(slot)),
        _ => d.template_word.into(),
    }
}

fn color_name<'a>(d: &'a DesignerTexts, c: &str) -> &'a str {
    match c {
        "background" => d.background,
        "foreground" => d.foreground,
        _ => d.label_color,
    }
}

pub fn group_name<'a>(d: &'a DesignerTexts, g: &str) -> &'a str {
    match g {
        "header" => d.group_header,
        "primary" => d.group_primary,
        "secondary" => d.group_secondary,
        "auxiliary" => d.group_auxiliary,
        _ => d.group_back,
    }
}

pub fn slot_name(d: &DesignerTexts, slot: Option<Slot>) -> String {
    match slot {
        Some(Slot::Icon) => d.slot_icon,
        Some(Slot::Logo) => d.slot_logo,
        Some(Slot::Strip) => d.slot_strip,
        Some(Slot::GoogleLogo) => d.slot_google_logo,
        Some(Slot::GoogleHero) => d.slot_google_hero,
        None => d.images_title,
    }
    .to_string()
}

/// The validator's problems, each placed once: next to its control when the page has one,
/// else in the list at the top.
pub struct Placed<'a> {
    problems: &'a [TemplateProblem],
    shown: RefCell<Vec<bool>>,
    d: &'a DesignerTexts,
}

impl<'a> Placed<'a> {
    pub fn new(problems: &'a [TemplateProblem], d: &'a DesignerTexts) -> Self {
        Placed {
            problems,
            shown: RefCell::new(vec![false; problems.len()]),
            d,
        }
    }

    fn has(&self, pointer: &str) -> bool {
        self.problems.iter().any(|p| p.pointer == pointer)
    }

    /// The problems of `pointer`, as the element the control is described by.
    fn at(&self, pointer: &str) -> Markup {
        let mut texts = Vec::new();
        for (i, p) in self.problems.iter().enumerate() {
            if p.pointer == pointer {
                self.shown.borrow_mut()[i] = true;
                texts.push(self.d.reason(&p.reason));
            }
        }
        if texts.is_empty() {
            return html! {};
        }
        let id = control_id(pointer);
        html! {
            p class="field-error" id=(format!("err-{id}")) data-for=(id) {
                (pointer_label(self.d, pointer)) ": " (texts.join("; "))
            }
        }
    }

    /// Those no control took.
    fn rest(&self) -> Vec<&'a TemplateProblem> {
        let shown = self.shown.borrow();
        self.problems
            .iter()
            .zip(shown.iter())
            .filter(|(_, s)| !**s)
            .map(|(p, _)| p)
            .collect()
    }
}

/// Attributes of a control: its id and, with a problem, the element describing it.
struct Ctl {
    id: String,
    invalid: bool,
}

impl Ctl {
    fn new(placed: &Placed<'_>, pointer: &str) -> Ctl {
        Ctl {
            id: control_id(pointer),
            invalid: placed.has(pointer),
        }
    }

    fn described(&self) -> Option<String> {
        self.invalid.then(|| format!("err-{}", self.id))
    }
}

fn str_at<'a>(doc: &'a Json, pointer: &str) -> &'a str {
    doc.pointer(pointer).and_then(Json::as_str).unwrap_or("")
}

fn text_at(doc: &Json, pointer: &str) -> String {
    match doc.pointer(pointer) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A labelled text control with its problems.
fn text_control(
    placed: &Placed<'_>,
    label: &str,
    name: &str,
    pointer: &str,
    value: &str,
    list: Option<&str>,
) -> Markup {
    let ctl = Ctl::new(placed, pointer);
    html! {
        div class="control" {
            label for=(ctl.id) { (label) }
            input type="text" id=(ctl.id) name=(name) value=(value) list=[list]
                aria-invalid=[ctl.invalid.then_some("true")] aria-describedby=[ctl.described()];
            (placed.at(pointer))
        }
    }
}

fn color_control(placed: &Placed<'_>, d: &DesignerTexts, doc: &Json, which: &str) -> Markup {
    let pointer = format!("/colors/{which}");
    let ctl = Ctl::new(placed, &pointer);
    let value = str_at(doc, &pointer);
    let picker = crate::template::validate::hex_color(value).unwrap_or_else(|| "#000000".into());
    let name = color_name(d, which);
    html! {
        div class="control color-control" {
            label for=(ctl.id) { (name) }
            div class="color-pair" {
                input type="color" id=(format!("{}-picker", ctl.id)) name=(format!("colors.{which}.picker"))
                    value=(picker) aria-label=(format!("{name} ({})", d.picker)) data-pair=(ctl.id);
                input type="text" id=(ctl.id) name=(format!("colors.{which}")) value=(value)
                    placeholder="#rrggbb" maxlength="32" data-color=(which)
                    aria-invalid=[ctl.invalid.then_some("true")] aria-describedby=[ctl.described()];
            }
            input type="hidden" name=(format!("colors.{which}.was")) value=(value);
            (placed.at(&pointer))
        }
    }
}

/// The contrast warning (empty when the colours read well).
pub fn contrast_markup(d: &DesignerTexts, doc: &Json) -> Markup {
    let low = low_contrast(doc);
    html! {
        @for (which, ratio) in &low {
            p class="warning" {
                (fill(&fill(d.low_contrast, "what", color_name(d, which)), "ratio", &format!("{ratio:.1}")))
            }
        }
    }
}

/// The note on Apple's row of secondary and auxiliary fields, flagged when over.
pub fn limit_markup(d: &DesignerTexts, doc: &Json) -> Markup {
    let n = store_card_row(doc);
    html! {
        p class=(if n > STORE_CARD_ROW_MAX { "warning" } else { "note" }) {
            (fill(d.row_limit, "count", &n.to_string()))
        }
    }
}

/// The problems no control took, listed at the top (the script replaces this list).
pub fn summary_markup(d: &DesignerTexts, placed_rest: &[&TemplateProblem], all: usize) -> Markup {
    html! {
        @if all > 0 {
            div class="errors" role="alert" {
                p { (fill(d.problems_count, "count", &all.to_string())) }
                @if !placed_rest.is_empty() {
                    ul {
                        @for p in placed_rest {
                            li { (pointer_label(d, &p.pointer)) " (" code { (p.pointer) } "): " (d.reason(&p.reason)) }
                        }
                    }
                }
            }
        }
    }
}

fn field_row(
    placed: &Placed<'_>,
    d: &DesignerTexts,
    group: &str,
    i: usize,
    field: Option<&Json>,
) -> Markup {
    let base = format!("/fields/{group}/{i}");
    let get = |p: &str| {
        field
            .map(|f| text_at(f, &format!("/{p}")))
            .unwrap_or_default()
    };
    let name = |p: &str| format!("f.{group}.{i}.{p}");
    let align_ptr = format!("{base}/text_alignment");
    let align = Ctl::new(placed, &align_ptr);
    let current_align = {
        let a = get("text_alignment");
        if a.is_empty() {
            "natural".to_string()
        } else {
            a
        }
    };
    html! {
        fieldset class="field-row" {
            legend { (group_name(d, group)) " " (i + 1) @if field.is_none() { " (" (d.new_field) ")" } }
            div class="grid" {
                (text_control(placed, d.key, &name("key"), &format!("{base}/key"), &get("key"), None))
                (text_control(placed, d.label, &name("label"), &format!("{base}/label"), &get("label"), Some("translation-keys")))
                (text_control(placed, d.value, &name("value"), &format!("{base}/value"), &get("value"), Some("placeholders")))
                (text_control(placed, d.change_message, &name("change_message"), &format!("{base}/change_message"), &get("change_message"), Some("translation-keys")))
                div class="control" {
                    label for=(align.id) { (d.alignment) }
                    select id=(align.id) name=(name("text_alignment"))
                        aria-invalid=[align.invalid.then_some("true")] aria-describedby=[align.described()] {
                        @for a in ALIGNMENTS {
                            option value=(a) selected[a == current_align] { (alignment_name(d, a)) }
                        }
                    }
                    (placed.at(&align_ptr))
                }
            }
            @if field.is_some() {
                div class="check" {
                    input type="checkbox" id=(format!("remove-{group}-{i}")) name=(name("remove")) value="1";
                    label for=(format!("remove-{group}-{i}")) { (d.remove_field) }
                }
            }
        }
    }
}

fn alignment_name<'a>(d: &'a DesignerTexts, a: &str) -> &'a str {
    match a {
        "left" => d.align_left,
        "center" => d.align_center,
        "right" => d.align_right,
        _ => d.align_natural,
    }
}

/// The form's controls (inside `form#designer`).
fn form_body(placed: &Placed<'_>, d: &DesignerTexts, doc: &Json) -> Markup {
    let kind = kind_of(doc);
    let localizations: BTreeMap<String, BTreeMap<String, String>> = doc
        .get("localizations")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let langs: Vec<&String> = localizations.keys().collect();
    let mut keys: Vec<&String> = localizations.values().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    let locations = doc
        .get("locations")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let barcode_format = str_at(doc, "/barcode/format");
    let barcode_ctl = Ctl::new(placed, "/barcode/format");
    html! {
        datalist id="placeholders" {
            @for p in placeholder::allowed(kind) {
                option value=(format!("{{{{{p}}}}}")) {}
            }
        }
        datalist id="translation-keys" {
            @for k in &keys { option value=(k) {} }
        }
        section class="panel" aria-labelledby="texts-title" {
            h2 id="texts-title" { (d.texts_title) }
            div class="grid" {
                (text_control(placed, d.name, "name", "/name", str_at(doc, "/name"), None))
                (text_control(placed, d.description, "description", "/description", str_at(doc, "/description"), Some("placeholders")))
                (text_control(placed, d.organization, "organization_name", "/organization_name", str_at(doc, "/organization_name"), Some("placeholders")))
                (text_control(placed, d.logo_text, "logo_text", "/logo_text", str_at(doc, "/logo_text"), Some("placeholders")))
            }
        }
        section class="panel" aria-labelledby="colors-title" {
            h2 id="colors-title" { (d.colors_title) }
            div class="grid" {
                (color_control(placed, d, doc, "background"))
                (color_control(placed, d, doc, "foreground"))
                (color_control(placed, d, doc, "label"))
            }
            div id="contrast" aria-live="polite" { (contrast_markup(d, doc)) }
            (placed.at("/colors"))
        }
        section class="panel" aria-labelledby="fields-title" {
            h2 id="fields-title" { (d.fields_title) }
            p class="note" { (d.fields_note) }
            @for group in GROUPS {
                @let list = doc.pointer(&format!("/fields/{group}")).and_then(Json::as_array).cloned().unwrap_or_default();
                div class="group" id=(format!("group-{group}")) {
                    h3 { (group_name(d, group)) }
                    @if group == "secondary" || group == "auxiliary" {
                        div class="row-limit" { (limit_markup(d, doc)) }
                    }
                    (placed.at(&format!("/fields/{group}")))
                    @for (i, f) in list.iter().enumerate() {
                        (field_row(placed, d, group, i, Some(f)))
                    }
                    (field_row(placed, d, group, list.len(), None))
                }
            }
            (placed.at("/fields"))
        }
        section class="panel" aria-labelledby="barcode-title" {
            h2 id="barcode-title" { (d.barcode_title) }
            div class="grid" {
                div class="control" {
                    label for=(barcode_ctl.id) { (d.barcode_format) }
                    select id=(barcode_ctl.id) name="barcode.format"
                        aria-invalid=[barcode_ctl.invalid.then_some("true")] aria-describedby=[barcode_ctl.described()] {
                        option value="" selected[barcode_format.is_empty()] { (d.no_barcode) }
                        @for f in BARCODES {
                            option value=(f) selected[f == barcode_format] { (f.to_uppercase()) }
                        }
                    }
                    (placed.at("/barcode/format"))
                }
                (text_control(placed, d.barcode_message, "barcode.message", "/barcode/message", str_at(doc, "/barcode/message"), Some("placeholders")))
                (text_control(placed, d.barcode_alt, "barcode.alt_text", "/barcode/alt_text", str_at(doc, "/barcode/alt_text"), Some("placeholders")))
            }
            (placed.at("/barcode"))
        }
        section class="panel" aria-labelledby="translations-title" {
            h2 id="translations-title" { (d.translations_title) }
            p class="note" { (d.translations_note) }
            @for (j, lang) in langs.iter().enumerate() {
                input type="hidden" name=(format!("lang.{j}")) value=(lang);
            }
            div class="table-wrap" {
                table class="translations" id="translations" {
                    thead { tr {
                        th scope="col" { (d.translation_key) }
                        @for lang in &langs { th scope="col" { (lang) } }
                    } }
                    tbody {
                        @for (i, key) in keys.iter().enumerate() {
                            tr {
                                th scope="row" {
                                    label class="visually-hidden" for=(format!("lk-{i}")) { (d.translation_key) }
                                    input type="text" id=(format!("lk-{i}")) name=(format!("lk.{i}")) value=(key);
                                }
                                @for lang in &langs {
                                    @let pointer = format!("/localizations/{lang}/{}", crate::template::images::pointer_token(key));
                                    @let ctl = Ctl::new(placed, &pointer);
                                    @let text = localizations.get(*lang).and_then(|m| m.get(*key));
                                    td class=[text.is_none().then_some("missing")] {
                                        label class="visually-hidden" for=(ctl.id) { (key) " (" (lang) ")" }
                                        textarea id=(ctl.id) name=(format!("l.{i}.{lang}")) rows="2"
                                            aria-invalid=[ctl.invalid.then_some("true")] aria-describedby=[ctl.described()] { (text.map(String::as_str).unwrap_or("")) }
                                        @if text.is_none() { p class="warning" { (d.missing_translation) } }
                                        (placed.at(&pointer))
                                    }
                                }
                            }
                        }
                        tr {
                            th scope="row" {
                                label for="lk-new" { (d.new_key) }
                                input type="text" id="lk-new" name=(format!("lk.{}", keys.len()));
                            }
                            @for lang in &langs {
                                td {
                                    label class="visually-hidden" for=(format!("l-new-{lang}")) { (d.new_key) " (" (lang) ")" }
                                    textarea id=(format!("l-new-{lang}")) name=(format!("l.{}.{lang}", keys.len())) rows="2" {}
                                }
                            }
                        }
                    }
                }
            }
            div class="control" {
                label for="new-lang" { (d.new_language) }
                input type="text" id="new-lang" name="new_lang" maxlength="16" placeholder="de";
            }
            (placed.at("/localizations"))
        }
        section class="panel" aria-labelledby="locations-title" {
            h2 id="locations-title" { (d.locations_title) }
            (placed.at("/locations"))
            @for i in 0..=locations.len() {
                @let base = format!("/locations/{i}");
                fieldset class="field-row" {
                    legend { (d.location) " " (i + 1) @if i == locations.len() { " (" (d.new_field) ")" } }
                    div class="grid" {
                        (text_control(placed, d.latitude, &format!("loc.{i}.latitude"), &format!("{base}/latitude"), &text_at(doc, &format!("{base}/latitude")), None))
                        (text_control(placed, d.longitude, &format!("loc.{i}.longitude"), &format!("{base}/longitude"), &text_at(doc, &format!("{base}/longitude")), None))
                        (text_control(placed, d.relevant_text, &format!("loc.{i}.relevant_text"), &format!("{base}/relevant_text"), &text_at(doc, &format!("{base}/relevant_text")), Some("translation-keys")))
                    }
                    (placed.at(&base))
                }
            }
        }
        section class="panel" aria-labelledby="dates-title" {
            h2 id="dates-title" { (d.dates_title) }
            p class="note" { (d.dates_note) }
            div class="grid" {
                (text_control(placed, d.expiration_date, "expiration_date", "/expiration_date", &text_at(doc, "/expiration_date"), None))
                (text_control(placed, d.relevant_date, "relevant_date", "/relevant_date", &text_at(doc, "/relevant_date"), None))
            }
        }
    }
}

/// The preview's language picker, when the template speaks more than one. It belongs to
/// the designer's form, so "refresh preview" (and the script's live preview) carry it.
fn language_picker(d: &DesignerTexts, doc: &Json, shown: Option<&str>) -> Markup {
    let langs: Vec<&String> = doc
        .get("localizations")
        .and_then(Json::as_object)
        .map(|l| l.keys().collect())
        .unwrap_or_default();
    if langs.len() < 2 {
        return html! {};
    }
    let shown = shown.unwrap_or(if langs.iter().any(|l| *l == "en") {
        "en"
    } else {
        langs[0].as_str()
    });
    html! {
        div class="control preview-language" {
            label for="preview-lang" { (d.preview_language) }
            div class="color-pair" {
                select id="preview-lang" name="preview_lang" form="designer" aria-describedby="preview-lang-note" {
                    @for l in &langs {
                        option value=(l) selected[l.as_str() == shown] { (l) }
                    }
                }
                button type="submit" form="designer" name="action" value="refresh" class="secondary" id="preview-lang-show" { (d.refresh_preview) }
            }
            p class="note" id="preview-lang-note" { (d.preview_language_note) }
        }
    }
}

fn data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

fn author_name(d: &DesignerTexts, author: Author, staff: &BTreeMap<uuid::Uuid, String>) -> String {
    match author {
        Author::Staff(id) => staff
            .get(&id)
            .cloned()
            .unwrap_or_else(|| d.former_staff.to_string()),
        Author::ApiKey(_) => d.api_key.to_string(),
        Author::Nobody => d.nobody.to_string(),
    }
}

/// What the page reads besides the working copy.
struct Around {
    reach: Reach,
    /// A page of the history, newest first.
    versions: Vec<Version>,
    /// Whether older versions follow that page.
    more_versions: bool,
    staff: BTreeMap<uuid::Uuid, String>,
}

async fn around(
    state: &AppState,
    tenant: Tenant,
    id: String,
    before: Option<i32>,
) -> Result<Around, ApiError> {
    db::run(&state.pool, move |conn| {
        let (versions, more_versions) = cut(Version::list(conn, &tenant, &id, before, PAGE + 1)?);
        Ok(Around {
            reach: template_version::reach(conn, &tenant, &id)?,
            versions,
            more_versions,
            staff: StaffMember::list(conn, &tenant)?
                .into_iter()
                .map(|s| (s.id, s.email))
                .collect(),
        })
    })
    .await
}

/// The designer page.
pub async fn render(
    session: &StaffSession,
    state: &AppState,
    status: StatusCode,
    view: View,
) -> Result<HttpResponse, PageError> {
    let d = designer_texts(session.lang);
    let t = session.texts();
    let around = around(
        state,
        session.tenant,
        view.template_id.clone(),
        view.history_before,
    )
    .await
    .map_err(|e| session.failed(e))?;
    let (preview, document, images) = preview_of(
        state,
        session,
        &view.template_id,
        view.document.clone(),
        view.images.clone(),
        view.preview_lang.clone(),
    )
    .await
    .map_err(|e| session.failed(e))?;
    let problems = match &preview {
        Ok(_) => Vec::new(),
        Err(problems) => problems.clone(),
    };
    let placed = Placed::new(&problems, d);
    let id = &view.template_id;
    let base = format!("/console/templates/{id}");
    // Versions are numbered in order, so the last one shown is the history's cursor.
    let history_next = around
        .more_versions
        .then(|| around.versions.last())
        .flatten()
        .map(|v| format!("{base}?before={}#history-title", v.version));
    let history_first = view.history_before.map(|_| format!("{base}#history-title"));
    let form = form_body(&placed, d, &document);
    let slot_problem = |slot: Slot| -> Markup { placed.at(&slot.pointer()) };
    let images_section = html! {
        section class="panel" aria-labelledby="images-title" id="images" {
            h2 id="images-title" { (d.images_title) }
            p class="note" { (d.images_note) }
            @for slot in Slot::ALL {
                @let has = slot.files().iter().any(|(f, _)| images.contains_key(*f));
                // Not a form of its own: its file input and button belong to the designer's
                // form, so an upload carries what was typed and keeps it.
                div class="stack slot" id=(format!("slot-{}", slot.name())) {
                    h3 { (slot_name(d, Some(slot))) }
                    @if let Some(file) = slot.files().iter().rev().find(|(f, _)| images.contains_key(*f)).and_then(|(f, _)| images.get(*f)) {
                        img class="slot-current" src=(data_uri(file)) alt=(fill(d.current_image, "slot", &slot_name(d, Some(slot))));
                    }
                    @if !has { p class="note" { (d.no_image) } }
                    @if let Some((s, note)) = &view.slot {
                        @if *s == slot {
                            @match note {
                                SlotNote::Fitted { png, width, height, source } => {
                                    div class="notice" id=(format!("fitted-{}", slot.name())) {
                                        p { (fill(&fill(&fill(d.fitted, "source", &format!("{}x{}", source.0, source.1)), "size", &format!("{width}x{height}")), "slot", &slot_name(d, Some(slot)))) }
                                        img class="slot-crop" src=(data_uri(png)) alt=(d.crop_preview);
                                    }
                                }
                                SlotNote::Refused(why) => {
                                    p class="field-error" id=(format!("err-slot-{}", slot.name())) { (why) }
                                }
                            }
                        }
                    }
                    (slot_problem(slot))
                    div class="control" {
                        label for=(format!("file-{}", slot.name())) { (d.choose_file) }
                        input type="file" form="designer" id=(format!("file-{}", slot.name())) name=(format!("file-{}", slot.name())) accept="image/png,image/jpeg"
                            aria-describedby=[matches!(&view.slot, Some((s, SlotNote::Refused(_))) if *s == slot).then(|| format!("err-slot-{}", slot.name()))];
                    }
                    button type="submit" class="secondary" form="designer" id=(format!("upload-{}", slot.name()))
                        formmethod="post" formenctype="multipart/form-data"
                        formaction=(format!("{base}/images/{}?csrf={}", slot.name(), session.csrf)) { (d.upload) }
                }
            }
        }
    };
    let rest = placed.rest();
    let colors_css = preview
        .as_ref()
        .ok()
        .map(|p| p.colors_css("#preview .pf-preview"));
    let preview_html = match &preview {
        Ok(p) => PreEscaped(p.html.clone()),
        Err(_) => PreEscaped(String::new()),
    };
    let body = html! {
        p { a href="/console/templates" { (d.all_templates) } }
        @match &view.notice {
            Some(Notice::Saved) => p class="notice" role="status" id="saved" { (d.saved) },
            Some(Notice::Refreshed) => p class="notice" role="status" id="refreshed" { (d.refreshed) },
            Some(Notice::Discarded) => p class="notice" role="status" id="discarded" { (d.discarded) },
            Some(Notice::Rejected(why)) => p class="errors" role="alert" id="rejected" { (why) },
            Some(Notice::Stale(why)) => div class="errors" role="alert" id="stale" {
                p { (why) }
                form method="post" action=(format!("{base}/discard")) {
                    (session.csrf_field())
                    button type="submit" class="danger" id="discard" { (d.discard) }
                }
            },
            None => {}
        }
        p class="note" id="status" {
            @if view.is_draft {
                (fill(&fill(d.draft_status, "based", &view.based_on.to_string()), "current", &view.current.to_string()))
            } @else {
                (fill(d.published_status, "current", &view.current.to_string()))
            }
        }
        div id="problem-summary" { (summary_markup(d, &rest, problems.len())) }
        div class="designer" {
            section class="panel preview-panel" aria-labelledby="preview-title" {
                h2 id="preview-title" { (d.preview_title) }
                (language_picker(d, &document, preview.as_ref().ok().map(|p| p.language.as_str()).or(view.preview_lang.as_deref())))
                div id="preview" aria-live="polite" { (preview_html) }
                @if preview.is_err() { p class="note" id="preview-waits" { (d.preview_waits) } }
            }
            div class="designer-form" {
                form method="post" action=(base) id="designer" data-preview=(format!("{base}/preview")) {
                    (session.csrf_field())
                    (form)
                    section class="panel" aria-labelledby="json-title" {
                        h2 id="json-title" { (d.json_title) }
                        details {
                            summary { (d.json_open) }
                            label for="json" { (d.json_label) }
                            textarea id="json" name="json" rows="16" { (serde_json::to_string_pretty(&document).unwrap_or_default()) }
                            button type="submit" name="action" value="json" class="secondary" id="apply-json" { (d.json_apply) }
                        }
                    }
                    div class="actions" {
                        button type="submit" name="action" value="save" id="save" { (d.save_draft) }
                        button type="submit" name="action" value="refresh" class="secondary" id="refresh" { (d.refresh_preview) }
                    }
                }
                (images_section)
            }
        }
        section class="panel" aria-labelledby="test-title" id="test-pass" {
            h2 id="test-title" { (d.test_title) }
            p class="note" { (d.test_note) }
            @if let Some(link) = &view.test_link {
                @if let Ok(svg) = crate::public_pages::qr::svg(link) {
                    img class="qr" id="test-qr" src=(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg))) alt=(d.test_qr_alt);
                }
                p { a id="test-link" href=(link) { (d.test_link) } }
                p class="note" { (d.test_expires) }
            } @else {
                form method="post" action=(format!("{base}/test-pass")) {
                    (session.csrf_field())
                    button type="submit" class="secondary" id="send-to-phone" { (d.send_to_phone) }
                }
            }
        }
        section class="panel" aria-labelledby="publish-title" id="publish" {
            h2 id="publish-title" { (d.publish_title) }
            p id="reach" {
                (fill(&fill(&fill(d.reach, "passes", &around.reach.passes.to_string()), "apple", &around.reach.apple_devices.to_string()), "google", &around.reach.google_saved.to_string()))
            }
            @if view.is_draft {
                form method="post" action=(format!("{base}/publish")) {
                    (session.csrf_field())
                    button type="submit" id="publish-button" { (d.publish) }
                }
                form method="post" action=(format!("{base}/discard")) {
                    (session.csrf_field())
                    button type="submit" class="secondary" id="discard-draft" { (d.discard) }
                }
            } @else {
                p class="note" { (d.nothing_to_publish) }
            }
        }
        section class="panel" aria-labelledby="history-title" id="history" {
            h2 id="history-title" { (d.history_title) }
            div class="table-wrap" {
                table class="cards" id="versions" {
                    thead { tr {
                        th scope="col" { (d.version) }
                        th scope="col" { (t.when) }
                        th scope="col" { (t.who) }
                        th scope="col" { (t.actions) }
                    } }
                    tbody {
                        @for v in &around.versions {
                            tr data-version=(v.version) {
                                td data-label=(d.version) {
                                    (v.version)
                                    @if let Some(from) = v.restored_from { " " (fill(d.restored_from, "version", &from.to_string())) }
                                }
                                td data-label=(t.when) { (v.published_at.format("%Y-%m-%d %H:%M")) }
                                td data-label=(t.who) { (author_name(d, v.author, &around.staff)) }
                                td data-label=(t.actions) {
                                    @if v.version != view.current {
                                        form class="inline" method="post" action=(format!("{base}/versions/{}/restore", v.version)) {
                                            (session.csrf_field())
                                            button type="submit" class="secondary" id=(format!("rollback-{}", v.version)) { (fill(d.rollback, "version", &v.version.to_string())) }
                                        }
                                    } @else {
                                        (d.current_version)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "history-pager", history_next, history_first))
        }
    };
    let nonce = crate::domain::tokens::secret(16);
    let head = Head {
        stylesheets: vec![crate::console::assets::url("preview.css")],
        scripts: vec![crate::console::assets::url("designer.js")],
        style: colors_css.map(|css| (nonce, css)),
        data_images: true,
    };
    let title = fill(d.designer_title, "name", str_at(&document, "/name"));
    Ok(session.page_with_head(status, Section::Templates, &title, &head, body))
}
