//! Logs of the server commands (`watch`, `reconcile`, `operator`, `webhook serve`) through
//! `tracing`: one subscriber for the process, levels from `RUST_LOG` (default `info`; e.g.
//! `RUST_LOG=kube_devops=debug,kube_runtime=warn`), written to stderr as text or as one JSON
//! object a line (`--log-format json`: `timestamp`, `level`, `target`, `message` and the
//! event's fields). kube-runtime and kube-client log through the same subscriber, so their
//! warnings (watch errors, backoffs) are no longer lost.
//!
//! The offline commands (`audit`, `policy`, ...) do not log: their stderr is for the user.

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-02T10:00:00.123Z  INFO kube_devops::leader: leads component="reconcile"`.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// The filter when `RUST_LOG` is unset or invalid.
const DEFAULT_FILTER: &str = "info";

/// Installs the process's subscriber (once; a second call changes nothing).
pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
}
