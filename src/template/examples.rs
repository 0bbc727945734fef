//! The example templates of `pass-templates/`, built into the binary. Every merchant starts
//! with them, under their folder names.

use super::images::Images;
use include_dir::{include_dir, Dir};

static EXAMPLES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/pass-templates");

pub struct Example {
    pub id: &'static str,
    pub document: serde_json::Value,
    pub images: Images,
}

/// Every example template folder (a folder with a `template.json`).
pub fn all() -> Vec<Example> {
    EXAMPLES
        .dirs()
        .filter_map(|dir| {
            let id = dir.path().file_name()?.to_str()?;
            let json = dir.get_file(dir.path().join("template.json"))?;
            let document = serde_json::from_slice(json.contents()).ok()?;
            let images = dir
                .files()
                .filter_map(|f| {
                    let name = f.path().file_name()?.to_str()?;
                    name.ends_with(".png")
                        .then(|| (name.to_string(), f.contents().to_vec()))
                })
                .collect();
            Some(Example {
                id,
                document,
                images,
            })
        })
        .collect()
}

/// Loads a template folder from disk (for `passfold pass render`).
pub fn load_folder(path: &std::path::Path) -> anyhow::Result<(serde_json::Value, Images)> {
    let json = std::fs::read(path.join("template.json"))
        .map_err(|e| anyhow::anyhow!("cannot read {}/template.json: {e}", path.display()))?;
    let document = serde_json::from_slice(&json)
        .map_err(|e| anyhow::anyhow!("{}/template.json is not JSON: {e}", path.display()))?;
    let mut images = Images::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".png") {
            images.insert(name, std::fs::read(entry.path())?);
        }
    }
    Ok((document, images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_examples_are_valid_templates() {
        let examples = all();
        let ids: Vec<&str> = examples.iter().map(|e| e.id).collect();
        assert!(
            ids.contains(&"loyalty-default") && ids.contains(&"gift-card-default"),
            "{ids:?}"
        );
        for e in examples {
            if let Err(problems) = crate::template::validate::parse_document(&e.document, &e.images)
            {
                panic!("{}: {problems:?}", e.id);
            }
        }
    }
}
