//! Template drafts, recorded versions and the image bytes they share (migration
//! `template_versions`). Rows and queries only: what publishing means lives in
//! `template::versions`.

use crate::db::Tenant;
use crate::schema::{
    google_installs, outbox, passes, registrations, template_blobs, template_drafts,
    template_versions,
};
use crate::template::images::Images;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::AggregateExpressionMethods;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Who made a draft or a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    Staff(Uuid),
    ApiKey(Uuid),
    /// The examples a merchant starts with, and versions from before history was kept.
    Nobody,
}

impl Author {
    fn columns(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Author::Staff(id) => (Some(id), None),
            Author::ApiKey(id) => (None, Some(id)),
            Author::Nobody => (None, None),
        }
    }

    fn from_columns(staff: Option<Uuid>, key: Option<Uuid>) -> Author {
        match (staff, key) {
            (Some(id), _) => Author::Staff(id),
            (None, Some(id)) => Author::ApiKey(id),
            (None, None) => Author::Nobody,
        }
    }
}

/// File name -> hex SHA-256 of the bytes in `template_blobs`.
pub type ImageRefs = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Version {
    pub version: i32,
    pub document: serde_json::Value,
    pub images: ImageRefs,
    pub published_at: DateTime<Utc>,
    pub author: Author,
    pub restored_from: Option<i32>,
}

/// A version about to be recorded.
pub struct NewVersion<'a> {
    pub merchant_id: Uuid,
    pub template_id: &'a str,
    pub version: i32,
    pub document: &'a serde_json::Value,
    pub images: &'a Images,
    pub author: Author,
    pub restored_from: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct Draft {
    pub document: serde_json::Value,
    pub images: ImageRefs,
    pub based_on: i32,
    pub author: Author,
    pub updated_at: DateTime<Utc>,
}

type VersionRow = (
    i32,
    serde_json::Value,
    serde_json::Value,
    DateTime<Utc>,
    Option<Uuid>,
    Option<Uuid>,
    Option<i32>,
);

fn refs_of(value: serde_json::Value) -> ImageRefs {
    serde_json::from_value(value).unwrap_or_default()
}

fn refs_json(refs: &ImageRefs) -> serde_json::Value {
    serde_json::to_value(refs).unwrap_or_default()
}

impl Version {
    fn from_row(
        (version, document, images, published_at, staff, key, restored_from): VersionRow,
    ) -> Version {
        Version {
            version,
            document,
            images: refs_of(images),
            published_at,
            author: Author::from_columns(staff, key),
            restored_from,
        }
    }

    /// Records a version of a template as it now stands, storing its images' bytes once.
    pub fn record(conn: &mut PgConnection, new: NewVersion<'_>) -> QueryResult<()> {
        let refs = store_blobs(conn, new.merchant_id, new.images)?;
        let (staff, key) = new.author.columns();
        diesel::insert_into(template_versions::table)
            .values((
                template_versions::merchant_id.eq(new.merchant_id),
                template_versions::template_id.eq(new.template_id),
                template_versions::version.eq(new.version),
                template_versions::document.eq(new.document),
                template_versions::images.eq(refs_json(&refs)),
                template_versions::staff_id.eq(staff),
                template_versions::api_key_id.eq(key),
                template_versions::restored_from.eq(new.restored_from),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Newest first, those older than `before` when given.
    pub fn list(
        conn: &mut PgConnection,
        tenant: &Tenant,
        template_id: &str,
        before: Option<i32>,
        limit: i64,
    ) -> QueryResult<Vec<Version>> {
        let mut query = template_versions::table
            .filter(template_versions::merchant_id.eq(tenant.merchant_id()))
            .filter(template_versions::template_id.eq(template_id))
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(template_versions::version.lt(before));
        }
        let rows: Vec<VersionRow> = query
            .order(template_versions::version.desc())
            .limit(limit)
            .select(version_columns())
            .load(conn)?;
        Ok(rows.into_iter().map(Version::from_row).collect())
    }

    pub fn find(
        conn: &mut PgConnection,
        tenant: &Tenant,
        template_id: &str,
        version: i32,
    ) -> QueryResult<Version> {
        let row: VersionRow = template_versions::table
            .find((tenant.merchant_id(), template_id, version))
            .select(version_columns())
            .first(conn)?;
        Ok(Version::from_row(row))
    }
}

#[allow(clippy::type_complexity)]
fn version_columns() -> (
    template_versions::version,
    template_versions::document,
    template_versions::images,
    template_versions::published_at,
    template_versions::staff_id,
    template_versions::api_key_id,
    template_versions::restored_from,
) {
    (
        template_versions::version,
        template_versions::document,
        template_versions::images,
        template_versions::published_at,
        template_versions::staff_id,
        template_versions::api_key_id,
        template_versions::restored_from,
    )
}

type DraftRow = (
    serde_json::Value,
    serde_json::Value,
    i32,
    Option<Uuid>,
    Option<Uuid>,
    DateTime<Utc>,
);

impl Draft {
    pub fn find(
        conn: &mut PgConnection,
        tenant: &Tenant,
        template_id: &str,
    ) -> QueryResult<Option<Draft>> {
        let row: Option<DraftRow> = template_drafts::table
            .find((tenant.merchant_id(), template_id))
            .select((
                template_drafts::document,
                template_drafts::images,
                template_drafts::based_on,
                template_drafts::staff_id,
                template_drafts::api_key_id,
                template_drafts::updated_at,
            ))
            .first(conn)
            .optional()?;
        Ok(row.map(
            |(document, images, based_on, staff, key, updated_at)| Draft {
                document,
                images: refs_of(images),
                based_on,
                author: Author::from_columns(staff, key),
                updated_at,
            },
        ))
    }

    /// Saves the draft (replacing any), its images' bytes stored once.
    pub fn save(
        conn: &mut PgConnection,
        tenant: &Tenant,
        template_id: &str,
        document: &serde_json::Value,
        images: &Images,
        based_on: i32,
        author: Author,
    ) -> QueryResult<Draft> {
        let refs = store_blobs(conn, tenant.merchant_id(), images)?;
        let (staff, key) = author.columns();
        let updated_at: DateTime<Utc> = diesel::insert_into(template_drafts::table)
            .values((
                template_drafts::merchant_id.eq(tenant.merchant_id()),
                template_drafts::template_id.eq(template_id),
                template_drafts::document.eq(document),
                template_drafts::images.eq(refs_json(&refs)),
                template_drafts::based_on.eq(based_on),
                template_drafts::staff_id.eq(staff),
                template_drafts::api_key_id.eq(key),
            ))
            .on_conflict((template_drafts::merchant_id, template_drafts::template_id))
            .do_update()
            .set((
                template_drafts::document.eq(document),
                template_drafts::images.eq(refs_json(&refs)),
                template_drafts::based_on.eq(based_on),
                template_drafts::staff_id.eq(staff),
                template_drafts::api_key_id.eq(key),
                template_drafts::updated_at.eq(diesel::dsl::now),
            ))
            .returning(template_drafts::updated_at)
            .get_result(conn)?;
        Ok(Draft {
            document: document.clone(),
            images: refs,
            based_on,
            author,
            updated_at,
        })
    }

    /// Discards the draft; true when there was one.
    pub fn discard(
        conn: &mut PgConnection,
        tenant: &Tenant,
        template_id: &str,
    ) -> QueryResult<bool> {
        let n = diesel::delete(template_drafts::table.find((tenant.merchant_id(), template_id)))
            .execute(conn)?;
        Ok(n > 0)
    }
}

/// Stores each image's bytes once per merchant; returns the references to them.
pub fn store_blobs(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    images: &Images,
) -> QueryResult<ImageRefs> {
    let mut refs = ImageRefs::new();
    let mut rows = Vec::with_capacity(images.len());
    for (name, data) in images {
        let digest = Sha256::digest(data).to_vec();
        refs.insert(name.clone(), hex::encode(&digest));
        rows.push((
            template_blobs::merchant_id.eq(merchant_id),
            template_blobs::sha256.eq(digest),
            template_blobs::data.eq(data.as_slice()),
        ));
    }
    if !rows.is_empty() {
        diesel::insert_into(template_blobs::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(refs)
}

/// The images a set of references names (a reference with no bytes is left out).
pub fn load_blobs(
    conn: &mut PgConnection,
    tenant: &Tenant,
    refs: &ImageRefs,
) -> QueryResult<Images> {
    let digests: Vec<Vec<u8>> = refs.values().filter_map(|h| hex::decode(h).ok()).collect();
    let rows: Vec<(Vec<u8>, Vec<u8>)> = template_blobs::table
        .filter(template_blobs::merchant_id.eq(tenant.merchant_id()))
        .filter(template_blobs::sha256.eq_any(&digests))
        .select((template_blobs::sha256, template_blobs::data))
        .load(conn)?;
    let by_hash: BTreeMap<String, Vec<u8>> = rows
        .into_iter()
        .map(|(digest, data)| (hex::encode(digest), data))
        .collect();
    Ok(refs
        .iter()
        .filter_map(|(name, hash)| by_hash.get(hash).map(|data| (name.clone(), data.clone())))
        .collect())
}

/// What a publish of a template reaches: its passes, the Apple devices registered for
/// them, and the Google Wallet objects saved by their holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Reach {
    pub passes: i64,
    pub apple_devices: i64,
    pub google_saved: i64,
}

pub fn reach(conn: &mut PgConnection, tenant: &Tenant, template_id: &str) -> QueryResult<Reach> {
    let merchant = tenant.merchant_id();
    let of_template = passes::table
        .filter(passes::merchant_id.eq(merchant))
        .filter(passes::template_id.eq(template_id));
    let passes: i64 = of_template.count().get_result(conn)?;
    let apple_devices: i64 = registrations::table
        .inner_join(passes::table.on(passes::id.eq(registrations::pass_id)))
        .filter(registrations::merchant_id.eq(merchant))
        .filter(passes::merchant_id.eq(merchant))
        .filter(passes::template_id.eq(template_id))
        .select(diesel::dsl::count(registrations::device_library_identifier).aggregate_distinct())
        .get_result(conn)?;
    let google_saved: i64 = google_installs::table
        .inner_join(passes::table.on(passes::id.eq(google_installs::pass_id)))
        .filter(google_installs::merchant_id.eq(merchant))
        .filter(passes::merchant_id.eq(merchant))
        .filter(passes::template_id.eq(template_id))
        .filter(google_installs::saved.eq(true))
        .count()
        .get_result(conn)?;
    Ok(Reach {
        passes,
        apple_devices,
        google_saved,
    })
}

/// Deliveries still queued for the template's passes, per channel: a publish's progress.
pub fn queued(
    conn: &mut PgConnection,
    tenant: &Tenant,
    template_id: &str,
) -> QueryResult<BTreeMap<String, i64>> {
    let merchant = tenant.merchant_id();
    let rows: Vec<(crate::domain::states::Channel, i64)> = outbox::table
        .inner_join(passes::table.on(passes::id.nullable().eq(outbox::pass_id)))
        .filter(outbox::merchant_id.eq(merchant))
        .filter(passes::merchant_id.eq(merchant))
        .filter(passes::template_id.eq(template_id))
        .group_by(outbox::channel)
        .select((outbox::channel, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(channel, n)| (channel.as_str().to_string(), n))
        .collect())
}
