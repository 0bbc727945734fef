use crate::db::Tenant;
use crate::domain::{TemplateId, TemplateKind};
use crate::models::template_version::{Author, NewVersion, Version};
use crate::schema::{template_images, templates};
use crate::template::examples;
use crate::template::images::Images;
use crate::template::TemplateDocument;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = templates)]
pub struct Template {
    pub merchant_id: Uuid,
    pub id: String,
    pub kind: TemplateKind,
    pub version: i32,
    pub document: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a template change was refused.
#[derive(Debug)]
pub enum TemplateChange {
    Exists,
    KindChanged,
}

impl Template {
    /// The stored document; it was validated before it was stored.
    pub fn parsed(&self) -> QueryResult<TemplateDocument> {
        serde_json::from_value(self.document.clone())
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
    }

    /// Gives a new merchant the example templates, under their folder names.
    pub(crate) fn install_examples(conn: &mut PgConnection, merchant_id: Uuid) -> QueryResult<()> {
        for example in examples::all() {
            let kind = example
                .document
                .get("kind")
                .and_then(|k| k.as_str())
                .and_then(TemplateKind::parse)
                .unwrap_or(TemplateKind::Loyalty);
            diesel::insert_into(templates::table)
                .values((
                    templates::merchant_id.eq(merchant_id),
                    templates::id.eq(example.id),
                    templates::kind.eq(kind),
                    templates::document.eq(&example.document),
                ))
                .execute(conn)?;
            insert_images(conn, merchant_id, example.id, &example.images)?;
            Version::record(
                conn,
                NewVersion {
                    merchant_id,
                    template_id: example.id,
                    version: 1,
                    document: &example.document,
                    images: &example.images,
                    author: Author::Nobody,
                    restored_from: None,
                },
            )?;
        }
        Ok(())
    }

    pub fn list(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Vec<Template>> {
        templates::table
            .filter(templates::merchant_id.eq(tenant.merchant_id()))
            .order(templates::id.asc())
            .select(Template::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: &str) -> QueryResult<Template> {
        templates::table
            .find((tenant.merchant_id(), id))
            .select(Template::as_select())
            .first(conn)
    }

    /// The template, its row locked until the transaction ends (read-modify-write of its
    /// images: a change made since the caller read it shows as a new version).
    pub fn lock(conn: &mut PgConnection, tenant: &Tenant, id: &str) -> QueryResult<Template> {
        templates::table
            .find((tenant.merchant_id(), id))
            .select(Template::as_select())
            .for_update()
            .first(conn)
    }

    pub fn images(conn: &mut PgConnection, tenant: &Tenant, id: &str) -> QueryResult<Images> {
        let rows: Vec<(String, Vec<u8>)> = template_images::table
            .filter(template_images::merchant_id.eq(tenant.merchant_id()))
            .filter(template_images::template_id.eq(id))
            .select((template_images::file_name, template_images::data))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    /// One image, for its public URL (images are on every pass: not a secret).
    pub fn public_image(
        conn: &mut PgConnection,
        merchant_id: Uuid,
        id: &str,
        file: &str,
    ) -> QueryResult<Option<Vec<u8>>> {
        template_images::table
            .find((merchant_id, id, file))
            .select(template_images::data)
            .first(conn)
            .optional()
    }

    pub fn create(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: &TemplateId,
        document: &TemplateDocument,
        images: &Images,
        author: Author,
    ) -> QueryResult<Result<Template, TemplateChange>> {
        conn.transaction(|conn| {
            let inserted = diesel::insert_into(templates::table)
                .values((
                    templates::merchant_id.eq(tenant.merchant_id()),
                    templates::id.eq(id.as_str()),
                    templates::kind.eq(document.kind),
                    templates::document.eq(to_json(document)?),
                ))
                .on_conflict_do_nothing()
                .returning(Template::as_returning())
                .get_result(conn)
                .optional()?;
            let Some(template) = inserted else {
                return Ok(Err(TemplateChange::Exists));
            };
            insert_images(conn, tenant.merchant_id(), id.as_str(), images)?;
            Version::record(
                conn,
                NewVersion {
                    merchant_id: tenant.merchant_id(),
                    template_id: id.as_str(),
                    version: template.version,
                    document: &template.document,
                    images,
                    author,
                    restored_from: None,
                },
            )?;
            Ok(Ok(template))
        })
    }

    /// Replaces the document (and the images, when given) and bumps the version (its passes
    /// change through `template::publish`).
    pub fn update(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: &str,
        document: &TemplateDocument,
        images: Option<&Images>,
    ) -> QueryResult<Result<Template, TemplateChange>> {
        conn.transaction(|conn| {
            let current: Template = templates::table
                .find((tenant.merchant_id(), id))
                .select(Template::as_select())
                .for_update()
                .first(conn)?;
            if current.kind != document.kind {
                return Ok(Err(TemplateChange::KindChanged));
            }
            if let Some(images) = images {
                diesel::delete(
                    template_images::table
                        .filter(template_images::merchant_id.eq(tenant.merchant_id()))
                        .filter(template_images::template_id.eq(id)),
                )
                .execute(conn)?;
                insert_images(conn, tenant.merchant_id(), id, images)?;
            }
            let updated = diesel::update(templates::table.find((tenant.merchant_id(), id)))
                .set((
                    templates::document.eq(to_json(document)?),
                    templates::version.eq(templates::version + 1),
                    templates::updated_at.eq(Utc::now()),
                ))
                .returning(Template::as_returning())
                .get_result(conn)?;
            Ok(Ok(updated))
        })
    }
}

fn to_json(document: &TemplateDocument) -> QueryResult<serde_json::Value> {
    serde_json::to_value(document)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

fn insert_images(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    template_id: &str,
    images: &Images,
) -> QueryResult<()> {
    let rows: Vec<_> = images
        .iter()
        .map(|(name, data)| {
            (
                template_images::merchant_id.eq(merchant_id),
                template_images::template_id.eq(template_id),
                template_images::file_name.eq(name.as_str()),
                template_images::data.eq(data.as_slice()),
            )
        })
        .collect();
    diesel::insert_into(template_images::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}
