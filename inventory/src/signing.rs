//! The deployment's ticket signing key: `TICKET_SIGNING_KEY`, or else the one
//! kept in the database, made by whichever process asks first, so that every
//! api process and worker signs alike.

use entity::prelude::*;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, sea_query::OnConflict};
use ticket_code::Signer;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("TICKET_SIGNING_KEY: {0}")]
    Configured(ticket_code::BadKey),
    #[error("the kept ticket signing key: {0}")]
    Kept(ticket_code::BadKey),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// `TICKET_SIGNING_KEY`, if set, checked to be a usable seed.
pub fn key_from_env() -> Result<Option<String>, platform::env::ConfigError> {
    match platform::env::optional("TICKET_SIGNING_KEY") {
        Some(seed) if Signer::from_seed(&seed).is_err() => Err(platform::env::ConfigError::new(
            "TICKET_SIGNING_KEY",
            "must be the base64url of 32 random bytes",
        )),
        seed => Ok(seed),
    }
}

pub async fn signer<C: ConnectionTrait>(
    db: &C,
    configured: Option<&str>,
) -> Result<Signer, KeyError> {
    if let Some(seed) = configured {
        return Signer::from_seed(seed).map_err(KeyError::Configured);
    }
    let row = SigningKeyModel {
        id: 1,
        seed: Signer::generate_seed(),
        created_at: platform::db::now(),
    };
    // The first process to get here keeps its key; the others read it.
    SigningKey::insert(SigningKeyActiveModel::from(row).reset_all())
        .on_conflict(
            OnConflict::column(SigningKeyColumn::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    let kept = SigningKey::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the ticket signing key".into()))?;
    Signer::from_seed(&kept.seed).map_err(KeyError::Kept)
}
