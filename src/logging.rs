//! Logs of the server commands (`watch`, `reconcile`, `operator`, `webhook serve`) through
//! `tracing`: one subscriber for the process, levels from `RUST_LOG` (default `info`; e.g.
//! `RUST_LOG=kube_devops=debug,kube_runtime=warn`), written to stderr as text or as one JSON
//! object a line (`--log-format json`: `timestamp`, `level`, `target`, `message`, the event's
//! fields, its span, and `trace_id`/`span_id` while traces are exported). kube-runtime and
//! kube-client log through the same subscriber, so their warnings (watch errors, backoffs) are
//! not lost.
//!
//! The same subscriber turns spans into OpenTelemetry spans when [`crate::traces`] finds an
//! OTLP endpoint; the level filter applies to what is logged, not to which spans are exported.
//!
//! The offline commands (`audit`, `policy`, ...) do not log: their stderr is for the user.

use crate::traces::{Settings, Traces};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

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

/// Installs the process's subscriber (once; a later call changes nothing) for `component`
/// (`watch`, `webhook`, ...: its `service.name` in traces). The returned value exports the
/// spans still queued when it is dropped: keep it until the command ends.
pub fn init(format: LogFormat, component: &str) -> Option<Traces> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => {
            let json = tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false);
            fmt.json().event_format(WithTraceIds(json)).boxed()
        }
    };
    let (traces, refused) = match Settings::from_env(component, |name| std::env::var(name).ok()) {
        Ok(Some(settings)) => match Traces::start(&settings) {
            Ok(traces) => (Some((traces, settings)), None),
            Err(e) => (None, Some(format!("cannot export traces: {e:#}"))),
        },
        Ok(None) => (None, None),
        Err(unsupported) => (None, Some(format!("not exporting traces: {}", unsupported.0))),
    };
    let spans = traces.as_ref().map(|(traces, _)| {
        // Spans of every level are exported; `RUST_LOG` only filters the log lines.
        tracing_opentelemetry::layer()
            .with_tracer(traces.tracer())
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry().with(fmt.with_filter(filter)).with(spans).try_init().is_ok();
    if let Some(refused) = refused {
        tracing::warn!("{refused}");
    }
    let (traces, settings) = traces?;
    if installed {
        let (variable, endpoint) = &settings.endpoint;
        tracing::info!(%endpoint, from = variable, service = %settings.service_name, "exporting traces over OTLP/HTTP");
    }
    installed.then_some(traces)
}

/// The JSON formatter, with the trace and span ids of the event's span appended to the object
/// (so a log line leads to its trace).
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else { return self.0.format_event(ctx, writer, event) };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.trim_end().strip_suffix('}') {
            Some(object) => writeln!(writer, "{object},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"),
            None => writer.write_str(&line),
        }
    }
}

/// The OpenTelemetry ids of the current span, when it is being exported.
fn current_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let current = tracing::Span::current();
    if current.is_none() {
        return None;
    }
    let context = current.context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}
