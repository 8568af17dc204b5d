use std::{net::SocketAddr, process::ExitCode, time::Duration};

use platform::{
    ChangeFeed, Queues, StorageSettings, db,
    env::{self, ConfigError},
    health, logging, metrics,
};
use worker::{Worker, WorkerSettings};

/// As the api's: memory freed after a burst goes back to the system.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `worker` runs the worker; `worker healthcheck` probes a running one.
fn main() -> ExitCode {
    let metrics_addr =
        match env::parsed_or("METRICS_ADDR", SocketAddr::from(([127, 0, 0, 1], 9100))) {
            Ok(addr) => addr,
            Err(error) => return config_error(error),
        };
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("healthcheck") => {
            return if health::probe(metrics_addr, "/health") {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Some(other) => {
            eprintln!("error: unknown command {other:?} (usage: worker [healthcheck])");
            return ExitCode::from(2);
        }
    }
    let _log_writer = logging::init("info");
    let (storage, settings) = match StorageSettings::from_env()
        .and_then(|storage| Ok((storage, WorkerSettings::from_env()?)))
    {
        Ok(settings) => settings,
        Err(error) => return config_error(error),
    };
    let grace = match env::parsed_or("SHUTDOWN_GRACE_SECS", 30u64) {
        Ok(secs) => Duration::from_secs(secs),
        Err(error) => return config_error(error),
    };
    let signing_key = match inventory::signing::key_from_env() {
        Ok(key) => key,
        Err(error) => return config_error(error),
    };
    // Before any thread starts: every thread inherits it.
    lower_priority(settings.nice);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(storage, settings, signing_key, metrics_addr, grace)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(error: ConfigError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(2)
}

async fn run(
    storage: StorageSettings,
    settings: WorkerSettings,
    signing_key: Option<String>,
    metrics_addr: SocketAddr,
    grace: Duration,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| anyhow::anyhow!("METRICS_ADDR {metrics_addr}: {e}"))?;
    // A job holds a connection for its queries only, not while the mail server
    // answers: a few serve many emails in flight.
    let connections = settings.concurrency.min(16) as u32 + 2;
    let db = db::connect_with_retry(&storage.database_url, connections).await;
    let queues = Queues::open(&storage.queue, &storage.queue_namespace, &db).await?;
    let live = ChangeFeed::open(
        &storage.queue,
        &storage.queue_namespace,
        queues.notifications.redis_connection(),
    )?;
    // Signs the codes of the tickets it emails, as the api does.
    let tickets = inventory::signing::signer(&db, signing_key.as_deref()).await?;
    let worker = Worker::new(&settings, db, queues, live, std::sync::Arc::new(tickets))?.spawn();
    let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
    let metrics_server = tokio::spawn(metrics::serve(
        listener,
        metrics_stopped,
        worker.mail_health.clone(),
    ));
    tracing::info!(%metrics_addr, "worker running; metrics at /metrics");

    shutdown_signal().await;
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: finishing jobs in flight"
    );
    if !worker.shutdown_within(grace).await {
        tracing::warn!("grace period over; jobs still in flight are left to the sweep");
    }
    let _ = stop_metrics.send(true);
    let _ = metrics_server.await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The worker's sending can wait a moment, a customer's request cannot: on a
/// machine the worker shares with the api (and its database), the worker
/// yields the cores under contention (`WORKER_NICE`, default 10) and takes
/// whatever is idle. Raising one's own niceness needs no privilege.
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    if let Err(error) = rustix::process::setpriority_process(None, nice) {
        eprintln!("warning: WORKER_NICE={nice} not applied: {error}");
    }
}
