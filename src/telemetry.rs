//! Structured logs with `tracing`: human text by default, JSON lines when
//! `PASSFOLD_LOG_FORMAT=json`. Logs go to stderr, so CLI commands keep stdout for their output.

use crate::configuration::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::{fmt, EnvFilter};

pub fn init(format: LogFormat) {
    // actix_http's HTTP/1 code logs every request it cannot parse (a NUL in a header, a URI
    // or head too long) at ERROR, after answering it 400 or 431 itself: the client's fault,
    // not the service's, so it stays out of the default log.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,actix_server=warn,actix_web=warn,tracing_actix_web=error,actix_http::h1=off",
        )
    });
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // try_init: tests initialise more than once per process.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
