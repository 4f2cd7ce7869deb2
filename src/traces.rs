//! Traces of the server commands over OTLP/HTTP (protobuf), configured by the standard
//! OpenTelemetry variables: nothing is exported unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. `tracing` spans become OpenTelemetry spans
//! (see [`crate::logging`]): a reconcile of the install or of a policy, an admission request,
//! a leader transition. Each component is its own `service.name` (`kube-devops-watch`, ...)
//! unless `OTEL_SERVICE_NAME` says otherwise; `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
//! `OTEL_TRACES_SAMPLER` and `OTEL_EXPORTER_OTLP_{HEADERS,TIMEOUT}` work as everywhere else.
//!
//! The exporter runs on the SDK's own thread, which blocks on each export; the HTTP client
//! (hyper, with OpenSSL for `https://` endpoints) runs on a one-thread runtime of its own, so
//! exports neither need nor block the component's runtime, and the last spans are flushed at
//! exit after that runtime is gone.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::Duration;

/// Where spans go, read from the environment by [`Settings::from_env`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The endpoint variable that was set (for the log line), and its value.
    pub endpoint: (&'static str, String),
    /// `service.name`, unless `OTEL_SERVICE_NAME` overrides it.
    pub service_name: String,
}

/// Why nothing is exported although an endpoint is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

const ENDPOINTS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];
const PROTOCOLS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"];

impl Settings {
    /// The settings of `component` from the variables `var` reads (the process environment in
    /// [`init`]): `Ok(None)` when no endpoint is set, `OTEL_SDK_DISABLED=true` or
    /// `OTEL_TRACES_EXPORTER=none`; `Err` for what only other exporters do (gRPC, JSON).
    pub fn from_env(component: &str, var: impl Fn(&str) -> Option<String>) -> Result<Option<Settings>, Unsupported> {
        let var = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(Unsupported(format!("OTEL_TRACES_EXPORTER={other}: only otlp (or none) is supported")));
            }
        }
        let Some(endpoint) = ENDPOINTS.iter().find_map(|name| Some((*name, var(name)?))) else { return Ok(None) };
        if !(endpoint.1.starts_with("http://") || endpoint.1.starts_with("https://")) {
            return Err(Unsupported(format!(
                "{}={}: the endpoint must be an http:// or https:// URL",
                endpoint.0, endpoint.1
            )));
        }
        if let Some((name, protocol)) = PROTOCOLS.iter().find_map(|name| Some((*name, var(name)?)))
            && protocol != "http/protobuf"
        {
            return Err(Unsupported(format!(
                "{name}={protocol}: only http/protobuf is supported (OTLP over HTTP, the collector's port 4318)"
            )));
        }
        Ok(Some(Settings { endpoint, service_name: format!("kube-devops-{component}") }))
    }
}

/// The exporting side of the process's traces: flushes and stops on drop.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// A tracer provider exporting to the endpoint of `settings`, or an error when the
    /// exporter cannot be built (an unparsable URL, a header variable that is not `k=v`).
    pub fn start(settings: &Settings) -> anyhow::Result<Traces> {
        use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(OwnRuntimeClient::new()?)
            .build()?;
        let provider =
            SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource(settings)).build();
        Ok(Traces { provider })
    }

    /// The tracer the `tracing` layer records into.
    pub fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        use opentelemetry::trace::TracerProvider as _;
        self.provider.tracer("kube-devops")
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        // Exports what is still queued (bounded by the exporter's timeout).
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "could not flush the last spans");
        }
    }
}

/// Makes `span` a child of the caller's span when the request carried a W3C `traceparent`
/// header (the API server sends one to webhooks when its own tracing is on), so an admission
/// request shows inside the API server's trace.
pub fn continue_trace<'a>(span: &tracing::Span, headers: impl Iterator<Item = (&'a str, Option<&'a str>)>) {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let carrier: std::collections::HashMap<String, String> = headers
        .filter(|(name, _)| name.eq_ignore_ascii_case("traceparent") || name.eq_ignore_ascii_case("tracestate"))
        .filter_map(|(name, value)| Some((name.to_ascii_lowercase(), value?.to_string())))
        .collect();
    if carrier.is_empty() {
        return;
    }
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    // Fails only when the span is not recorded (no traces exported): nothing to join then.
    let _ = span.set_parent(parent);
}

/// Records how the current reconcile ended on its span (`result`, declared when the span
/// was made).
pub fn record_result(result: &'static str) {
    tracing::Span::current().record("result", result);
}

/// Records a failed reconcile on its span: `result=error`, and an error status with the
/// error's text (`otel.status_code` and `otel.status_description`, declared when the span was
/// made).
pub fn record_error(error: &dyn std::fmt::Display) {
    let span = tracing::Span::current();
    span.record("result", "error");
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", error.to_string());
}

/// `service.name` (unless `OTEL_SERVICE_NAME` is set), `service.version`, and the pod and
/// namespace from the downward API, besides what `OTEL_RESOURCE_ATTRIBUTES` adds.
fn resource(settings: &Settings) -> Resource {
    let mut builder = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        builder = builder.with_service_name(settings.service_name.clone());
    }
    let mut attributes = vec![KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))];
    for (variable, key) in [("POD_NAME", "k8s.pod.name"), ("POD_NAMESPACE", "k8s.namespace.name")] {
        if let Some(value) = std::env::var(variable).ok().filter(|v| !v.is_empty()) {
            attributes.push(KeyValue::new(key, value));
        }
    }
    builder.with_attributes(attributes).build()
}

type HttpConnector = hyper_util::client::legacy::connect::HttpConnector;
type HttpsConnector = hyper_openssl::client::legacy::HttpsConnector<HttpConnector>;

/// hyper-openssl's connector, which the exporter's client needs to be `Debug`.
#[derive(Clone)]
struct Connector(HttpsConnector);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpsConnector")
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = <HttpsConnector as tower_service::Service<http::Uri>>::Response;
    type Error = <HttpsConnector as tower_service::Service<http::Uri>>::Error;
    type Future = <HttpsConnector as tower_service::Service<http::Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        self.0.call(uri)
    }
}

/// Sends the exporter's requests with hyper on a runtime of its own (see the module's note).
#[derive(Debug)]
struct OwnRuntimeClient {
    runtime: tokio::runtime::Runtime,
    client: opentelemetry_http::hyper::HyperClient<Connector>,
}

/// How long one export may take before it is abandoned (the batch is dropped, as the SDK does
/// with any failed export).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl OwnRuntimeClient {
    fn new() -> anyhow::Result<OwnRuntimeClient> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()?;
        let mut http = HttpConnector::new();
        // hyper's connector refuses https:// URLs unless told the TLS layer handles them.
        http.enforce_http(false);
        let tls = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())?;
        let connector = Connector(HttpsConnector::with_connector(http, tls)?);
        let client = opentelemetry_http::hyper::HyperClient::new(connector, EXPORT_TIMEOUT, None);
        Ok(OwnRuntimeClient { runtime, client })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OwnRuntimeClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<opentelemetry_http::Response<opentelemetry_http::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        self.runtime.spawn(async move { client.send_bytes(request).await }).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<Settings>, Unsupported> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_env("watch", |name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint_or_when_switched_off() {
        assert_eq!(settings(&[]), Ok(None));
        assert_eq!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None));
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(settings(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]), Ok(None));
        assert_eq!(settings(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]), Ok(None));
    }

    #[test]
    fn an_endpoint_names_the_component_as_the_service() {
        let found = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).unwrap().unwrap();
        assert_eq!(found.service_name, "kube-devops-watch");
        assert_eq!(found.endpoint, ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318".to_string()));
        // The traces-only variable wins, as the OpenTelemetry specification says.
        let both = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example:443/v1/traces"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(both.unwrap().unwrap().endpoint.0, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    }

    /// The trace id `span` records in, with a subscriber that records spans (exporting nowhere).
    fn trace_of(headers: &[(&str, Option<&str>)]) -> String {
        use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        use tracing_subscriber::layer::SubscriberExt;
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("admission");
            continue_trace(&span, headers.iter().copied());
            span.context().span().span_context().trace_id().to_string()
        })
    }

    #[test]
    fn an_admission_request_joins_the_trace_its_traceparent_names() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let joined = trace_of(&[("Content-Type", Some("application/json")), ("Traceparent", Some(parent))]);
        assert_eq!(joined, "0af7651916cd43dd8448eb211c80319c");
        // Without one (or with one that does not parse), a trace of its own.
        for headers in [vec![], vec![("traceparent", Some("00-zz-b7ad6b7169203331-01"))], vec![("traceparent", None)]] {
            let own = trace_of(&headers);
            assert!(own != joined && own.len() == 32 && own != "0".repeat(32), "{own}");
        }
    }

    #[test]
    fn protocols_and_exporters_this_build_lacks_are_refused_with_the_variable_named() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        let grpc = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err();
        assert!(grpc.0.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc") && grpc.0.contains("4318"), "{grpc:?}");
        let json = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")]).unwrap_err();
        assert!(json.0.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "{json:?}");
        let zipkin = settings(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).unwrap_err();
        assert!(zipkin.0.contains("zipkin"), "{zipkin:?}");
        let bare = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).unwrap_err();
        assert!(bare.0.contains("http://"), "{bare:?}");
    }
}
