//! Logging for both binaries.

use std::{
    fs::File,
    io::{BufWriter, Write},
    os::fd::AsFd,
};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// Log lines queued for the writer thread; past this a logging thread waits
/// (lines are never dropped).
const QUEUED_LINES: usize = 64 * 1024;
const WRITE_BUFFER: usize = 64 * 1024;

/// Keeps the log writer's thread; dropped at the end of `main`, it writes out
/// what is still queued.
#[must_use = "logs still queued are lost unless this lives until the end of main"]
pub struct LogWriter {
    _thread: WorkerGuard,
}

/// JSON lines by default; `LOG_FORMAT=pretty` for humans. `RUST_LOG` filters;
/// without it, `default_filter` (each binary knows what its own noise is).
///
/// Lines are formatted where they are logged and written by a thread of their
/// own, many to a write: a line a request written straight to standard output
/// cost the api a tenth of its bookings a second.
pub fn init(default_filter: &str) -> LogWriter {
    use tracing_subscriber::EnvFilter;
    // An empty RUST_LOG (compose passes one through when the host has none) means
    // the default, not "log nothing".
    let filter = crate::env::optional("RUST_LOG")
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(standard_output());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if std::env::var("LOG_FORMAT").as_deref() == Ok("pretty") {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
    LogWriter { _thread: guard }
}

/// Standard output in blocks: the writer thread flushes whenever it has
/// written everything queued (Rust's own `stdout` writes each line at once).
fn standard_output() -> Box<dyn Write + Send + Sync> {
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(BufWriter::with_capacity(WRITE_BUFFER, File::from(fd))),
        Err(_) => Box::new(std::io::stdout()),
    }
}
