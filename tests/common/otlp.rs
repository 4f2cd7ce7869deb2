//! An OTLP/HTTP receiver for the tests, in place of an OpenTelemetry Collector: it takes
//! `POST /v1/traces` with a protobuf body, decodes it with the protocol's own message types
//! (opentelemetry-proto), answers as a collector does, and keeps the spans. Anything else (a
//! wrong path or content type, a body that does not decode) is kept as a protocol error for the
//! test to assert on.

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One exported span, with its resource's attributes.
#[derive(Clone, Debug)]
pub struct ExportedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// Span attributes, values as text.
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes (`service.name`, ...), values as text.
    pub resource: BTreeMap<String, String>,
    /// The status code (0 unset, 1 ok, 2 error).
    pub status: i32,
}

impl ExportedSpan {
    pub fn service(&self) -> &str {
        self.resource.get("service.name").map(String::as_str).unwrap_or_default()
    }

    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Received {
    spans: Vec<ExportedSpan>,
    errors: Vec<String>,
}

/// The receiver, listening on 127.0.0.1 until the test ends.
pub struct Receiver {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let received = shared.clone();
                std::thread::spawn(move || serve(stream, &received));
            }
        });
        Receiver { endpoint, received }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ExportedSpan> {
        self.received.lock().unwrap().spans.clone()
    }

    /// Requests that were not valid OTLP/HTTP trace exports.
    pub fn errors(&self) -> Vec<String> {
        self.received.lock().unwrap().errors.clone()
    }
}

/// Serves one connection's requests (exporters keep connections alive).
fn serve(stream: TcpStream, received: &Mutex<Received>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, response) = match check(request_line.trim_end(), &headers, &body) {
            Ok(spans) => {
                received.lock().unwrap().spans.extend(spans);
                ("200 OK", ExportTraceServiceResponse::default().encode_to_vec())
            }
            Err(error) => {
                received.lock().unwrap().errors.push(error);
                ("400 Bad Request", Vec::new())
            }
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            response.len()
        );
        if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&response)).is_err() {
            return;
        }
    }
}

/// The spans of a valid OTLP/HTTP protobuf trace export.
fn check(request_line: &str, headers: &BTreeMap<String, String>, body: &[u8]) -> Result<Vec<ExportedSpan>, String> {
    if request_line != "POST /v1/traces HTTP/1.1" {
        return Err(format!("not an OTLP trace export: {request_line}"));
    }
    let content_type = headers.get("content-type").map(String::as_str);
    if content_type != Some("application/x-protobuf") {
        return Err(format!("content type {content_type:?}, not application/x-protobuf"));
    }
    let request =
        ExportTraceServiceRequest::decode(body).map_err(|e| format!("not an ExportTraceServiceRequest: {e}"))?;
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = attributes(&resource_spans.resource.map(|r| r.attributes).unwrap_or_default());
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(ExportedSpan {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                    resource: resource.clone(),
                    status: span.status.map(|s| s.code).unwrap_or_default(),
                });
            }
        }
    }
    Ok(spans)
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
