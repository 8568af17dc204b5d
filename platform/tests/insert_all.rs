//! `insert_all` writes every value as given, on both databases: on
//! PostgreSQL each column goes as one array parameter (`unnest`), so text
//! that an array literal must quote is the case to prove.

use chrono::{DateTime, TimeZone, Utc};
use platform::db::{connect, insert_all};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, Set};
use uuid::Uuid;

mod sample {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "samples")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub other_id: Option<Uuid>,
        pub name: String,
        pub note: Option<String>,
        pub count: i32,
        pub total: i64,
        pub flag: bool,
        pub details: Option<Json>,
        pub at: DateTimeUtc,
        pub ended_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Text an array literal must quote or escape, and text that looks like its syntax.
const AWKWARD: [&str; 12] = [
    "",
    "plain",
    "NULL",
    "null",
    "he said \"hi\"",
    "back\\slash\\",
    "\\\"",
    "{braces},commas,",
    "'single' quotes",
    "  spaces around  ",
    "line\nbreak\ttab",
    "ünïcödé ✓ 🎟",
];

fn samples(count: usize) -> Vec<sample::Model> {
    let base = Utc.with_ymd_and_hms(2030, 5, 1, 19, 0, 0).unwrap();
    (0..count)
        .map(|n| {
            let text = AWKWARD[n % AWKWARD.len()];
            let at: DateTime<Utc> = base + chrono::Duration::microseconds(n as i64 * 1_000_001);
            sample::Model {
                id: Uuid::now_v7(),
                other_id: (n % 2 == 0).then(Uuid::now_v7),
                name: format!("{text}{n}"),
                note: (n % 3 != 0).then(|| text.to_owned()),
                count: i32::try_from(n).unwrap() - 5,
                total: i64::MAX - n as i64,
                flag: n % 2 == 1,
                details: (n % 4 != 0)
                    .then(|| serde_json::json!({"text": text, "n": n, "list": [text, null]})),
                at,
                ended_at: (n % 5 == 0).then_some(at),
            }
        })
        .collect()
}

fn active(model: &sample::Model) -> sample::ActiveModel {
    sample::ActiveModel {
        id: Set(model.id),
        other_id: Set(model.other_id),
        name: Set(model.name.clone()),
        note: Set(model.note.clone()),
        count: Set(model.count),
        total: Set(model.total),
        flag: Set(model.flag),
        details: Set(model.details.clone()),
        at: Set(model.at),
        ended_at: Set(model.ended_at),
    }
}

/// A database of this test's own: a new PostgreSQL database when
/// `DATABASE_URL` is set, else a SQLite file.
async fn database() -> (
    DatabaseConnection,
    Option<(String, String)>,
    Option<tempfile::TempDir>,
) {
    match std::env::var("DATABASE_URL") {
        Ok(url) if platform::db::is_postgres(&url) => {
            let name = format!("insert_all_{}", Uuid::now_v7().simple());
            let admin = connect(&url, 1).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let (base, _) = url.rsplit_once('/').unwrap();
            let db = connect(&format!("{base}/{name}"), 2).await.unwrap();
            db.execute_unprepared(
                "CREATE TABLE samples (id uuid PRIMARY KEY, other_id uuid, name text NOT NULL, \
                 note varchar(64), count integer NOT NULL, total bigint NOT NULL, flag boolean NOT NULL, \
                 details json, at timestamptz NOT NULL, ended_at timestamptz)",
            )
            .await
            .unwrap();
            (db, Some((url, name)), None)
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("samples.db").display()
            );
            let db = connect(&url, 2).await.unwrap();
            db.execute_unprepared(
                "CREATE TABLE samples (id uuid_text PRIMARY KEY, other_id uuid_text, name text NOT NULL, \
                 note text, count integer NOT NULL, total integer NOT NULL, flag boolean NOT NULL, \
                 details json_text, at timestamp_with_timezone_text NOT NULL, ended_at timestamp_with_timezone_text)",
            )
            .await
            .unwrap();
            (db, None, Some(dir))
        }
    }
}

#[tokio::test]
async fn every_value_comes_back_as_written_in_batches_of_any_size() {
    let (db, postgres, _dir) = database().await;
    let mut written = Vec::new();
    for count in [0, 1, 2, 250] {
        let batch = samples(count);
        insert_all(&db, batch.iter().map(active).collect())
            .await
            .unwrap();
        written.extend(batch);
    }
    let read = sample::Entity::find()
        .order_by_asc(sample::Column::Id)
        .all(&db)
        .await
        .unwrap();
    written.sort_by_key(|model| model.id);
    assert_eq!(read.len(), written.len());
    for (read, written) in read.iter().zip(&written) {
        assert_eq!(read, written);
    }
    drop(db);
    if let Some((url, name)) = postgres {
        let admin = connect(&url, 1).await.unwrap();
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}
