//! Embedded mode (cargo feature `embedded-worker`, on by default): the worker
//! runs inside the api process, for a zero-configuration start on SQLite.

use rocket::{
    Orbit, Rocket,
    fairing::{Fairing, Info, Kind},
};
use tokio::sync::Mutex;
use worker::{Worker, WorkerHandle};

/// Runs the worker inside the api process (embedded mode) for as long as Rocket runs.
pub struct EmbeddedWorker {
    worker: Mutex<Option<Worker>>,
    running: Mutex<Option<WorkerHandle>>,
}

impl EmbeddedWorker {
    pub fn new(worker: Worker) -> Self {
        Self {
            worker: Mutex::new(Some(worker)),
            running: Mutex::new(None),
        }
    }
}

#[rocket::async_trait]
impl Fairing for EmbeddedWorker {
    fn info(&self) -> Info {
        Info {
            name: "embedded notification worker",
            kind: Kind::Liftoff | Kind::Shutdown,
        }
    }

    async fn on_liftoff(&self, _: &Rocket<Orbit>) {
        if let Some(worker) = self.worker.lock().await.take() {
            *self.running.lock().await = Some(worker.spawn());
        }
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        if let Some(running) = self.running.lock().await.take() {
            running.shutdown().await;
        }
    }
}
