//! Database connections, shared by the api and the worker.

use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ColumnType, ConnectOptions, ConnectionTrait,
    Database, DatabaseConnection, DbBackend, DbErr, EntityName, EntityTrait, IdenStatic, Iterable,
    RuntimeErr, Statement, Value, sea_query::OnConflict,
};

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens a pool. On SQLite, a file that other processes are opening at the same
/// moment can refuse with "database is locked" while one of them switches it to
/// WAL (SQLite does not wait on its busy handler for that); that passes in
/// milliseconds, so it is tried again for up to about five seconds.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut attempts = 0;
    loop {
        match open(url, max_connections).await {
            Err(error) if is_sqlite(url) && is_locked(&error) && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => return result,
        }
    }
}

/// SQLITE_BUSY (5) while connecting.
fn is_locked(error: &DbErr) -> bool {
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(error)) => match error.as_ref() {
            sea_orm::sqlx::Error::Database(db) => db.code().as_deref() == Some("5"),
            _ => false,
        },
        _ => false,
    }
}

/// PostgreSQL session limits for every pooled connection (migrations lift
/// them for their own transaction).
const STATEMENT_TIMEOUT: &str = "30s";
const LOCK_TIMEOUT: &str = "10s";
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// Prepared statements each PostgreSQL connection keeps.
const STATEMENT_CACHE: usize = 24;

async fn open(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        // A request waits at most this long for a connection; past it, it fails
        // with 503 instead of hanging while the database is down or saturated.
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if is_postgres(url) {
        // No statement waits for ever: a batch queued behind a stuck lock, or a
        // transaction left open, gives up and its request is answered 503.
        options.map_sqlx_postgres_opts(|opts| {
            opts.statement_cache_capacity(STATEMENT_CACHE).options([
                ("statement_timeout", STATEMENT_TIMEOUT),
                ("lock_timeout", LOCK_TIMEOUT),
                (
                    "idle_in_transaction_session_timeout",
                    IDLE_IN_TRANSACTION_TIMEOUT,
                ),
            ])
        });
    }
    if is_sqlite(url) {
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    }
    Database::connect(options).await
}

/// Connects, waiting for the database to come up rather than failing, so that a
/// process started alongside its database (compose, a reboot) settles by itself.
pub async fn connect_with_retry(url: &str, max_connections: u32) -> DatabaseConnection {
    let mut delay = Duration::from_millis(200);
    loop {
        match connect(url, max_connections).await {
            Ok(db) => return db,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "database is not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later
/// fails with "database is locked" when another writer got in between, whereas an
/// immediate one simply waits its turn. PostgreSQL ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        isolation_level: None,
        access_mode: None,
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
    })
    .await
}

/// Bind parameters per multi-row INSERT, under both databases' limits
/// (SQLite 32,766, PostgreSQL 65,535): a batch's rows of one table go in one
/// or two statements. (sqlx before 0.9.1 left Nagle's algorithm on, and a
/// statement over ~16 KB then waited ~40 ms for a delayed ACK; 0.9.1 sets
/// TCP_NODELAY, launchbadge/sqlx#4335.) Measured on the bench's hot event:
/// 7,850 → 8,795 bookings/s going from 400 parameters to 8,000.
const PARAMETERS_PER_INSERT: usize = 8000;

/// Rows per `unnest` INSERT on PostgreSQL (which has no parameter limit to
/// keep under; this bounds one statement's size).
const ROWS_PER_UNNEST: usize = 10_000;

/// How many rows of `columns` columns to insert per statement.
fn rows_per_insert(columns: usize) -> usize {
    (PARAMETERS_PER_INSERT / columns.max(1)).max(1)
}

/// Inserts the rows in as few statements as the databases allow, in order.
pub async fn insert_all<A, C>(db: &C, rows: Vec<A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    if db.get_database_backend() == DbBackend::Postgres {
        let mut unsent = Vec::new();
        for chunk in rows.chunks(ROWS_PER_UNNEST) {
            match unnest_insert(chunk) {
                Some(insert) => {
                    db.execute_raw(insert).await?;
                }
                None => unsent.extend_from_slice(chunk),
            }
        }
        return insert_all_with(db, unsent, None).await;
    }
    insert_all_with(db, rows, None).await
}

/// [`insert_all`], each statement with `on_conflict`.
pub async fn upsert_all<A, C>(db: &C, rows: Vec<A>, on_conflict: OnConflict) -> Result<(), DbErr>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    insert_all_with(db, rows, Some(on_conflict)).await
}

async fn insert_all_with<A, C>(
    db: &C,
    rows: Vec<A>,
    on_conflict: Option<OnConflict>,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    let per_insert = rows_per_insert(<A::Entity as EntityTrait>::Column::iter().count());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut insert = A::Entity::insert_many(rows.by_ref().take(per_insert));
        if let Some(on_conflict) = &on_conflict {
            insert = insert.on_conflict(on_conflict.clone());
        }
        insert.exec_without_returning(db).await?;
    }
    Ok(())
}

/// The rows as one PostgreSQL statement, each column one array parameter:
/// `INSERT INTO t (a, b) SELECT * FROM unnest($1::uuid[], $2::text[])`. Its
/// text is the same for any number of rows, so each connection prepares it
/// once, where a multi-row VALUES has a text (parsed, planned and cached
/// anew) per row count. `None` if a row leaves a column unset or holds a
/// value this form does not carry: those go as VALUES.
fn unnest_insert<A: ActiveModelTrait>(rows: &[A]) -> Option<Statement> {
    let entity = A::Entity::default();
    let mut names = Vec::new();
    let mut arrays = Vec::new();
    let mut values = Vec::new();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        let definition = column.def();
        let column_type = definition.get_column_type();
        let mut array = String::from("{");
        let mut element_type = None;
        for (n, row) in rows.iter().enumerate() {
            let (ActiveValue::Set(value) | ActiveValue::Unchanged(value)) = row.get(column) else {
                return None;
            };
            if n > 0 {
                array.push(',');
            }
            element_type = Some(push_element(&mut array, &value, column_type)?);
        }
        array.push('}');
        names.push(format!("\"{}\"", column.as_str()));
        arrays.push(format!("${}::{}[]", values.len() + 1, element_type?));
        values.push(Value::String(Some(array)));
    }
    let table = match entity.schema_name() {
        Some(schema) => format!("\"{schema}\".\"{}\"", entity.table_name()),
        None => format!("\"{}\"", entity.table_name()),
    };
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({})",
        names.join(", "),
        arrays.join(", ")
    );
    Some(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
}

/// Appends `value` to a PostgreSQL array literal (`NULL`, or quoted text) and
/// returns the array's element type; `None` for a value not carried so.
fn push_element(
    array: &mut String,
    value: &Value,
    column_type: &ColumnType,
) -> Option<&'static str> {
    let (element_type, text) = match value {
        Value::Bool(v) => ("bool", v.map(|v| v.to_string())),
        Value::TinyInt(v) => ("int2", v.map(|v| v.to_string())),
        Value::SmallInt(v) => ("int2", v.map(|v| v.to_string())),
        Value::Int(v) => ("int4", v.map(|v| v.to_string())),
        Value::BigInt(v) => ("int8", v.map(|v| v.to_string())),
        Value::String(v) => ("text", v.clone()),
        Value::Uuid(v) => ("uuid", v.map(|v| v.to_string())),
        Value::Json(v) => {
            let element_type = match column_type {
                ColumnType::JsonBinary => "jsonb",
                _ => "json",
            };
            (element_type, v.as_ref().map(|v| v.to_string()))
        }
        Value::ChronoDateTimeUtc(v) => (
            "timestamptz",
            v.map(|v| v.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()),
        ),
        Value::ChronoDate(v) => ("date", v.map(|v| v.to_string())),
        _ => return None,
    };
    match text {
        None => array.push_str("NULL"),
        Some(text) => {
            array.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    array.push('\\');
                }
                array.push(c);
            }
            array.push('"');
        }
    }
    Some(element_type)
}

/// Timestamps at the precision the database keeps (microseconds), so what is
/// returned is what a later read returns.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
