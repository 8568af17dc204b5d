use sea_orm::entity::prelude::*;

/// The ticket signing key made once when `TICKET_SIGNING_KEY` is not set,
/// so that every process signs alike. One row (`id` 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// base64url of the 32-byte Ed25519 seed.
    pub seed: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
