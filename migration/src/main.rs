//! `migration [up | down | status | fresh]`, on the database in `DATABASE_URL`.
//!
//! Started beside its database (compose, a fresh volume), it waits for the
//! database to accept connections, up to `MIGRATION_WAIT_SECS` (default 60), and
//! says in one line what went wrong when it gives up. `up` takes the same lock as
//! the api, so it may run while api processes start.

use std::{process::ExitCode, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

const USAGE: &str = "usage: migration [up | down | status | fresh]";

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "up".into());
    if !["up", "down", "status", "fresh"].contains(&command.as_str()) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("migration: DATABASE_URL is not set");
        return ExitCode::from(2);
    };
    let wait = match std::env::var("MIGRATION_WAIT_SECS") {
        Err(_) => Duration::from_secs(60),
        Ok(raw) => match raw.parse() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                eprintln!("migration: MIGRATION_WAIT_SECS must be a whole number of seconds");
                return ExitCode::from(2);
            }
        },
    };
    let db = match connect_within(&url, wait).await {
        Ok(db) => db,
        Err(error) => {
            eprintln!(
                "migration: the database did not accept connections within {wait:?}: {error}"
            );
            return ExitCode::FAILURE;
        }
    };
    let result = match command.as_str() {
        "up" => migration::up_exactly_once(&db).await,
        "down" => Migrator::down(&db, Some(1)).await,
        "status" => Migrator::status(&db).await,
        _ => Migrator::fresh(&db).await,
    };
    match result {
        Ok(()) => {
            println!("migration: {command} done");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("migration: {command} failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn connect_within(url: &str, wait: Duration) -> Result<DatabaseConnection, DbErr> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(200);
    loop {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        match Database::connect(options).await {
            Ok(db) => return Ok(db),
            Err(error) if tokio::time::Instant::now() + delay >= deadline => return Err(error),
            Err(error) => {
                eprintln!("migration: database not reachable yet ({error}); retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
