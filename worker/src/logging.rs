//! Logging for both binaries.

/// Without `RUST_LOG`: our info lines, and Rocket's (which arrive through the
/// `log` bridge, so Rocket's own `log_level` does not apply) only on errors: it
/// warns about every failed guard (an ordinary 401). Each request is logged once
/// by the api's telemetry instead.
const DEFAULT_LOG_FILTER: &str = "info,rocket=error,api::routes=error";

/// JSON lines by default; `LOG_FORMAT=pretty` for humans. `RUST_LOG` filters.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    // An empty RUST_LOG (compose passes one through when the host has none) means
    // the default, not "log nothing".
    let filter = crate::env::optional("RUST_LOG")
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if std::env::var("LOG_FORMAT").as_deref() == Ok("pretty") {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}
