//! What calls gathered into one round (`platform::gather`) are answered when
//! the round's statement fails or the round never answers.

use sea_orm::DbErr;

/// One statement's error, for each of the calls its round answered.
pub fn each_failed<T>(error: &DbErr, count: usize) -> Vec<Result<T, DbErr>> {
    let message = error.to_string();
    (0..count)
        .map(|_| Err(DbErr::Custom(message.clone())))
        .collect()
}

/// The error of a call whose round never answered.
pub fn lost() -> DbErr {
    DbErr::Custom("the statement gathering this call ended without an answer".into())
}
