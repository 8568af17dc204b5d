use sea_orm::entity::prelude::*;

/// Where an organizer's other systems hear of changes (SPEC §16).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub url: String,
    /// The message types it takes, comma-separated (`booking.confirmed,…`).
    pub types: String,
    /// No event listed: every event of its organizer, present and future.
    pub all_events: bool,
    /// `whsec_…`: deliveries are signed with it.
    pub secret: String,
    pub enabled: bool,
    /// Why it was switched off, when not by its organizer.
    pub disabled_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
