//! The `migration` binary as compose runs it: it waits for its database, and
//! when it gives up it says why in one line, without a panic.

use std::process::Command;

fn migration(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_migration"))
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("MIGRATION_WAIT_SECS", "2")
        .args(args)
        .output()
        .expect("run the migration binary")
}

#[test]
fn an_unreachable_database_is_one_line_and_a_failure_exit_not_a_panic() {
    // A port nobody listens on: connecting is refused, as before PostgreSQL is up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let output = migration(
        &format!("postgres://nobody@127.0.0.1:{port}/booking"),
        &["up"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("migration: the database did not accept connections within"),
        "{stderr}"
    );
    assert!(
        started.elapsed().as_secs_f64() >= 1.0,
        "it waited before giving up"
    );
}

#[test]
fn up_then_status_on_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    for args in [&["up"][..], &["up"], &["status"]] {
        let output = migration(&url, args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output = migration("", &["up"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "migration: DATABASE_URL is not set"
    );
}
