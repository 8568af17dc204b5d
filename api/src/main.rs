use std::{net::SocketAddr, process::ExitCode};

use api::{Settings, startup};
use platform::env::{self, ConfigError};
use rocket::figment::Figment;

/// An allocator that gives freed memory back to the system: after a surge of
/// connections or live streams closes, the api shrinks again (glibc's malloc
/// kept it): jemalloc, with its background thread purging pages unused
/// for about ten seconds.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `api` serves; `api healthcheck` probes a running api (for container
/// HEALTHCHECKs, which have no shell or curl to do it).
fn main() -> ExitCode {
    let figment = match figment() {
        Ok(figment) => figment,
        Err(error) => return config_error(error),
    };
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("healthcheck") => return healthcheck(&figment),
        Some(other) => {
            eprintln!("error: unknown command {other:?} (usage: api [healthcheck])");
            return ExitCode::from(2);
        }
    }
    // Rocket's own lines arrive through the `log` bridge (so its `log_level`
    // does not apply) and would warn about every failed guard, an ordinary 401:
    // only its errors. Each request is logged once by `telemetry` instead.
    let _log_writer = platform::logging::init("info,rocket=error,api::routes=error");
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return config_error(error),
    };
    rocket::execute(async move {
        let app = match startup::build(&settings).await {
            Ok(app) => app,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        let rocket = match api::rocket(figment, app).ignite().await {
            Ok(rocket) => rocket,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        match api::launch(rocket).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

fn config_error(error: ConfigError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(2)
}

/// Rocket's configuration (`ROCKET_*` as usual) with our defaults.
///
/// On SIGTERM Rocket stops accepting at once; if any request was in flight it then
/// waits out the whole grace period (Rocket 0.5 does not poll for completion)
/// before exiting 0. Grace plus the 2 s mercy stays under the 10 s that Docker
/// and Kubernetes give by default.
fn figment() -> Result<Figment, ConfigError> {
    let grace: u32 = env::parsed_or("SHUTDOWN_GRACE_SECS", 5)?;
    Ok(rocket::Config::figment()
        .merge(("shutdown.grace", grace))
        .merge(("shutdown.mercy", 2)))
}

fn healthcheck(figment: &Figment) -> ExitCode {
    let config = match rocket::Config::try_from(figment) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::new(config.address, config.port);
    if platform::health::probe(addr, "/health") {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
