//! Logging for both binaries.

/// JSON lines by default; `LOG_FORMAT=pretty` for humans. `RUST_LOG` filters;
/// without it, `default_filter` (each binary knows what its own noise is).
pub fn init(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    // An empty RUST_LOG (compose passes one through when the host has none) means
    // the default, not "log nothing".
    let filter = crate::env::optional("RUST_LOG")
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if std::env::var("LOG_FORMAT").as_deref() == Ok("pretty") {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}
