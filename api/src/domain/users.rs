use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, SqlErr,
    sea_query::{Expr, ExprTrait, Func},
};
use uuid::Uuid;

use super::{Error, ValidationErrors, now, validation};
use crate::auth::password;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
const EMAIL_MAX_CHARS: usize = 254;
const NAME_MAX_CHARS: usize = 200;

/// A trimmed address the mailer accepts. Compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        if email.chars().count() > EMAIL_MAX_CHARS {
            return Err(format!("must be at most {EMAIL_MAX_CHARS} characters"));
        }
        if email.chars().any(|c| c.is_ascii_control()) {
            return Err("must not contain control characters".into());
        }
        if !platform::email::is_valid_address(email) {
            return Err("is not a valid email address".into());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            Err(format!("must be at least {PASSWORD_MIN_CHARS} characters"))
        } else if chars > PASSWORD_MAX_CHARS {
            Err(format!("must be at most {PASSWORD_MAX_CHARS} characters"))
        } else {
            Ok(Self(raw))
        }
    }
}

pub struct NewUser {
    email: Email,
    password: Password,
    name: String,
    role: Role,
}

impl NewUser {
    /// Checks every field at once.
    pub fn parse(
        email: &str,
        password: String,
        name: &str,
        role: &str,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let email = Email::parse(email).map_err(|e| errors.add("email", e)).ok();
        let password = Password::parse(password)
            .map_err(|e| errors.add("password", e))
            .ok();
        let name = validation::text(&mut errors, "name", name, NAME_MAX_CHARS);
        let role = match role {
            "organizer" => Some(Role::Organizer),
            "customer" => Some(Role::Customer),
            _ => {
                errors.add("role", "must be \"organizer\" or \"customer\"");
                None
            }
        };
        match (email, password, name, role) {
            (Some(email), Some(password), Some(name), Some(role)) if errors.is_empty() => {
                Ok(Self {
                    email,
                    password,
                    name,
                    role,
                })
            }
            _ => Err(errors),
        }
    }
}

pub async fn register(db: &DatabaseConnection, user: NewUser) -> Result<UserModel, Error> {
    if find_by_email(db, &user.email).await?.is_some() {
        return Err(Error::EmailTaken);
    }
    let password_hash = password::hash(user.password.0).await?;
    let inserted = UserActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(user.email.0),
        password_hash: Set(password_hash),
        name: Set(user.name),
        role: Set(user.role),
        created_at: Set(now()),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(user) => Ok(user),
        // Two registrations racing for one address: the unique index decides.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(Error::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Same answer, and the same work, for an unknown email and a wrong password.
pub async fn login(
    db: &DatabaseConnection,
    email: &str,
    password: String,
) -> Result<UserModel, Error> {
    let user = match Email::parse(email) {
        Ok(email) => find_by_email(db, &email).await?,
        Err(_) => None,
    };
    let matches =
        password::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user {
        Some(user) if matches => Ok(user),
        _ => Err(Error::InvalidCredentials),
    }
}

pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<UserModel, Error> {
    User::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))
}

async fn find_by_email(db: &DatabaseConnection, email: &Email) -> Result<Option<UserModel>, Error> {
    Ok(User::find()
        .filter(
            Expr::expr(Func::lower(Expr::col(UserColumn::Email))).eq(email.as_str().to_lowercase()),
        )
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let Err(errors) = NewUser::parse("nope", "short".into(), "  ", "admin") else {
            panic!("accepted invalid input");
        };
        let fields: Vec<_> = errors.into_fields().into_keys().collect();
        assert_eq!(fields, ["email", "name", "password", "role"]);
    }

    #[test]
    fn emails_are_trimmed_and_passwords_bounded_in_characters() {
        assert_eq!(
            Email::parse("  Ann@Example.com ").unwrap().as_str(),
            "Ann@Example.com"
        );
        assert!(Password::parse("é".repeat(128)).is_ok());
        assert!(Password::parse("é".repeat(129)).is_err());
        assert!(Password::parse("1234567".into()).is_err());
    }
}
