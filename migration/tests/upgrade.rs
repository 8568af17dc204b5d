//! Upgrading a database that already has bookings: the holds migration fills
//! `booked_tickets` from what was sold, the ticket-types migration gives the
//! event one free type holding its tickets, and from then on the database
//! refuses counts that do not add up. On SQLite, and on PostgreSQL when `DATABASE_URL`
//! names a server (a database of its own, dropped afterwards).

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

async fn fresh() -> (
    DatabaseConnection,
    Option<(String, String)>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    match std::env::var("DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let name = format!("migration_test_{}", std::process::id());
            let admin = Database::connect(&admin_url).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let (base, _) = admin_url.rsplit_once('/').unwrap();
            let db = Database::connect(format!("{base}/{name}")).await.unwrap();
            (db, Some((admin_url, name)), dir)
        }
        _ => {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
            (Database::connect(url).await.unwrap(), None, dir)
        }
    }
}

async fn one_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0)
        .or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from))
        .unwrap()
}

#[tokio::test]
async fn the_holds_migration_keeps_what_was_sold_and_then_guards_the_counts() {
    let (db, postgres, _dir) = fresh().await;
    Migrator::up(&db, Some(2)).await.unwrap();
    for sql in [
        "INSERT INTO users (id, email, password_hash, name, role, created_at) VALUES \
         ('0190f4b2-0000-7000-8000-000000000001', 'o@example.com', '-', 'O', 'organizer', '2030-01-01T00:00:00Z')",
        "INSERT INTO events (id, organizer_id, title, venue, starts_at, ends_at, total_tickets, \
         available_tickets, status, created_at, updated_at) VALUES \
         ('0190f4b2-0000-7000-8000-000000000002', '0190f4b2-0000-7000-8000-000000000001', 'Old', 'Hall', \
          '2030-05-01T19:00:00Z', '2030-05-01T23:00:00Z', 10, 7, 'scheduled', \
          '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z')",
        "INSERT INTO users (id, email, password_hash, name, role, created_at) VALUES \
         ('0190f4b2-0000-7000-8000-000000000003', 'c@example.com', '-', 'C', 'customer', '2030-01-01T00:00:00Z')",
        "INSERT INTO bookings (id, event_id, user_id, quantity, status, created_at) VALUES \
         ('0190f4b2-0000-7000-8000-000000000004', '0190f4b2-0000-7000-8000-000000000002', \
          '0190f4b2-0000-7000-8000-000000000003', 3, 'confirmed', '2030-01-02T00:00:00Z')",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    Migrator::up(&db, None).await.unwrap();

    assert_eq!(one_i64(&db, "SELECT booked_tickets FROM events").await, 3);
    assert_eq!(one_i64(&db, "SELECT held_tickets FROM events").await, 0);
    assert_eq!(one_i64(&db, "SELECT hold_minutes FROM events").await, 10);
    // Counts that do not add up are refused, whatever the code does.
    for broken in [
        "UPDATE events SET available_tickets = available_tickets - 1",
        "UPDATE events SET held_tickets = held_tickets + 1",
        "UPDATE events SET booked_tickets = -1, available_tickets = 11",
    ] {
        assert!(
            db.execute_unprepared(broken).await.is_err(),
            "{broken} was accepted"
        );
    }
    db.execute_unprepared(
        "UPDATE events SET available_tickets = available_tickets - 2, held_tickets = held_tickets + 2",
    )
    .await
    .expect("a move between counts keeps the sum");
    // The event's one free type holds its tickets as they stood, and guards
    // its own counts.
    assert_eq!(one_i64(&db, "SELECT count(*) FROM ticket_types").await, 1);
    assert_eq!(
        one_i64(
            &db,
            "SELECT quantity * 100 + booked FROM ticket_types WHERE price = 0"
        )
        .await,
        10 * 100 + 3
    );
    assert!(
        db.execute_unprepared("UPDATE ticket_types SET available = available + 1")
            .await
            .is_err(),
        "a type's counts that do not add up were accepted"
    );
    // The booking made before tickets has one per unit, of the event's type.
    assert_eq!(
        one_i64(
            &db,
            "SELECT count(*) FROM tickets WHERE status = 'valid' AND seat_id IS NULL \
             AND ticket_type_id = event_id"
        )
        .await,
        3
    );
    // And back down.
    Migrator::down(&db, Some(3)).await.unwrap();
    assert_eq!(
        one_i64(&db, "SELECT available_tickets FROM events").await,
        5
    );

    if let Some((admin_url, name)) = postgres {
        db.close().await.unwrap();
        let admin = Database::connect(&admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}
