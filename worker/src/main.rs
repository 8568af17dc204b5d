use worker::{JobQueue, Worker, WorkerSettings, db};

#[tokio::main]
async fn main() {
    db::init_tracing();
    let settings = match WorkerSettings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(settings).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run(settings: WorkerSettings) -> anyhow::Result<()> {
    let db = db::connect_with_retry(&settings.database_url, settings.concurrency as u32 + 2).await;
    let queue = JobQueue::open(&settings.queue, &settings.queue_name, &db).await?;
    let worker = Worker::new(&settings, db, queue)?.spawn();
    shutdown_signal().await;
    tracing::info!("stopping: finishing jobs in flight");
    worker.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
