//! PostgreSQL going away under load (production mode only): requests fail fast
//! with 503 while it is down, none hangs, and the api serves again as soon as the
//! database is back, without a restart. Uses a PostgreSQL server of the test's
//! own, so stopping it disturbs no other test.

use std::{
    path::PathBuf,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use crate::helpers::{Mode, TestApp, skipped};

struct PrivatePostgres {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// `initdb` and `pg_ctl` run as the `postgres` user: PostgreSQL refuses root.
    fn as_postgres(&self, program: &str, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn create() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("pg_ctl").exists())?;
        let data = tempfile::tempdir().ok()?;
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(data.path())
            .status()
            .ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let pg = Self { bin, data, port };
        let cluster = pg.cluster().display().to_string();
        pg.as_postgres(
            "initdb",
            &["-D", &cluster, "-U", "postgres", "--auth=trust"],
        )
        .then_some(pg)
    }

    fn cluster(&self) -> PathBuf {
        self.data.path().join("cluster")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.path().display()
        );
        let log = self.data.path().join("log").display().to_string();
        let cluster = self.cluster().display().to_string();
        assert!(self.as_postgres(
            "pg_ctl",
            &["-D", &cluster, "-l", &log, "-o", &options, "-w", "start"]
        ));
    }

    fn stop(&self) {
        let cluster = self.cluster().display().to_string();
        assert!(self.as_postgres("pg_ctl", &["-D", &cluster, "-m", "immediate", "-w", "stop"]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let cluster = self.cluster().display().to_string();
        self.as_postgres("pg_ctl", &["-D", &cluster, "-m", "immediate", "stop"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_answers_503_while_postgres_is_down_and_recovers_by_itself() {
    if skipped(Mode::Production) {
        return;
    }
    let Some(postgres) = PrivatePostgres::create() else {
        panic!("cannot create a private PostgreSQL server (initdb as the postgres user)");
    };
    postgres.start();
    let url = postgres.url();
    let app = Arc::new(TestApp::spawn_with(|s| s.storage.database_url = url).await);
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 1_000_000).await;
    let id = event["id"].as_str().unwrap().to_owned();

    // Steady load: one booking after another, each timed.
    let running = Arc::new(AtomicBool::new(true));
    let load = {
        let (app, running, token, id) = (
            app.clone(),
            running.clone(),
            customer.token.clone(),
            id.clone(),
        );
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while running.load(Ordering::SeqCst) {
                let started = Instant::now();
                let response = app
                    .http
                    .post(app.url(&format!("/api/v1/events/{id}/bookings")))
                    .bearer_auth(&token)
                    .json(&json!({"quantity": 1}))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let status = match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        if status == 503 {
                            assert_eq!(body["error"]["code"], "unavailable", "{body}");
                        }
                        status
                    }
                    Err(_) => 0,
                };
                seen.push((started, status, started.elapsed()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.stop();
    let down_at = Instant::now();
    // Long enough for requests that wait out the pool's 5 s acquire timeout.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (status, ready) = app.get("/ready", None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(
        ready["error"]["details"]["database"], "not answering",
        "{ready}"
    );
    // What is down, not why: no addresses or driver messages for anonymous callers.
    assert_eq!(
        ready["error"]["details"].as_object().map(|d| d.len()),
        Some(1),
        "{ready}"
    );
    let up_at = Instant::now();
    postgres.start();

    // Serving again without a restart.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = app.book(&customer, &id, 1).await;
        if status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not serving 20 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::SeqCst);
    let seen = load.await.unwrap();

    // Requests sent and answered entirely while the database was down.
    let while_down: Vec<_> = seen
        .iter()
        .filter(|(sent, _, took)| *sent > down_at && *sent + *took < up_at)
        .collect();
    assert!(!while_down.is_empty());
    assert!(
        while_down.iter().all(|(_, status, _)| *status == 503),
        "{while_down:?}"
    );
    let slowest = seen.iter().map(|(_, _, took)| *took).max().unwrap();
    assert!(
        slowest < Duration::from_secs(12),
        "a request hung for {slowest:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, status, _)| [201, 503].contains(status)),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(sent, status, _)| *sent > recovered_at && *status == 201),
        "the steady load is served again too"
    );
    app.assert_ticket_invariant(&id).await;
}
