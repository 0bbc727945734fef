//! `passfold pass render`: a signed pass from a template folder and sample data, so a
//! merchant can try a design on a phone without the server.

use super::assets::TemplateAssets;
use super::pass_json::{render, PassInput};
use super::pkpass::build;
use super::SigningIdentity;
use crate::configuration::Settings;
use crate::domain::{tokens, Currency, Money};
use crate::template::{examples, placeholder, validate, Context, Value};
use anyhow::{anyhow, bail, Context as _};
use std::path::Path;

pub fn render_to_file(
    settings: &Settings,
    template_dir: &Path,
    data_file: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let (raw, images) = examples::load_folder(template_dir)?;
    let document = validate::parse_document(&raw, &images).map_err(|problems| {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.pointer, p.detail))
            .collect();
        anyhow!("the template has problems: {}", list.join("; "))
    })?;
    let data: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data_file)
            .with_context(|| format!("cannot read {}", data_file.display()))?,
    )
    .with_context(|| format!("{} is not JSON", data_file.display()))?;
    let context = sample_context(document.kind, &data)?;
    let identity = SigningIdentity::load(&settings.apple)?;
    identity.announce();
    let card_number = match context.get("card_number") {
        Some(v) => v.format("en"),
        None => String::new(),
    };
    let serial = tokens::serial_number();
    let token = tokens::secret(32);
    let web_service_url = format!("{}/apple", settings.public_url);
    let rendered = render(&PassInput {
        template: &document,
        context: &context,
        pass_type_id: &identity.pass_type_id,
        team_id: &identity.team_id,
        serial_number: &serial,
        authentication_token: &token,
        web_service_url: &web_service_url,
        voided: false,
        card_number: &card_number,
        message: None,
    });
    let bytes = build(&identity, &rendered, &TemplateAssets::new(&images))?;
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, serial {serial})",
        out.display(),
        bytes.len()
    );
    Ok(())
}

/// Placeholder values from a JSON object; only the placeholders of the template's kind.
fn sample_context(
    kind: crate::domain::TemplateKind,
    data: &serde_json::Value,
) -> anyhow::Result<Context> {
    let object = data
        .as_object()
        .ok_or_else(|| anyhow!("the data file must hold a JSON object"))?;
    let mut context = Context::default();
    for &name in placeholder::allowed(kind) {
        let Some(value) = object.get(name) else {
            continue;
        };
        let value = match value {
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Number(n) => Value::Number(
                n.as_i64()
                    .ok_or_else(|| anyhow!("{name}: a whole number"))?,
            ),
            serde_json::Value::Object(m) => {
                let amount = m
                    .get("amount")
                    .and_then(|a| a.as_i64())
                    .ok_or_else(|| anyhow!("{name}.amount: minor units"))?;
                let currency = m
                    .get("currency")
                    .and_then(|c| c.as_str())
                    .ok_or_else(|| anyhow!("{name}.currency: ISO-4217 code"))?;
                Value::Money(Money::new(
                    amount,
                    Currency::parse(currency).map_err(|e| anyhow!("{name}.currency: {e}"))?,
                ))
            }
            _ => bail!("{name}: a string, a number or {{\"amount\", \"currency\"}}"),
        };
        context.set(name, value);
    }
    for key in object.keys() {
        if !placeholder::allowed(kind).contains(&key.as_str()) {
            bail!(
                "{key:?} is not a placeholder of a {} template",
                kind.as_str()
            );
        }
    }
    Ok(context)
}
