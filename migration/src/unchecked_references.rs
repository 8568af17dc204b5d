//! Foreign keys dropped on PostgreSQL for the booking path's speed, and put
//! back on the way down (migrations 15, 17 and 18 each say why theirs cannot
//! dangle). SQLite keeps all of them: dropping a constraint there means
//! rebuilding the table, and it is not where the speed is measured.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// `table.column → parent(id)`, under PostgreSQL's default constraint name
/// `{table}_{column}_fkey`.
pub(crate) struct Reference {
    pub table: &'static str,
    pub column: &'static str,
    pub parent: &'static str,
}

impl Reference {
    fn constraint(&self) -> String {
        format!("{}_{}_fkey", self.table, self.column)
    }
}

/// Drops the references' checks (PostgreSQL only).
pub(crate) async fn drop_checks(
    manager: &SchemaManager<'_>,
    references: &[Reference],
) -> Result<(), DbErr> {
    on_postgres(manager, references, |reference| {
        format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
            reference.table,
            reference.constraint()
        )
    })
    .await
}

/// Puts the references' checks back (PostgreSQL only).
pub(crate) async fn restore_checks(
    manager: &SchemaManager<'_>,
    references: &[Reference],
) -> Result<(), DbErr> {
    on_postgres(manager, references, |reference| {
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {}(id)",
            reference.table,
            reference.constraint(),
            reference.column,
            reference.parent
        )
    })
    .await
}

/// Runs `statement` of each reference, in order, on PostgreSQL only.
async fn on_postgres(
    manager: &SchemaManager<'_>,
    references: &[Reference],
    statement: impl Fn(&Reference) -> String,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for reference in references {
        manager
            .get_connection()
            .execute_unprepared(&statement(reference))
            .await?;
    }
    Ok(())
}
