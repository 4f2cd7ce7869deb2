//! Validating admission webhooks: matching (rules, scope, namespaceSelector, objectSelector),
//! a real AdmissionReview v1 over HTTPS to the webhook (service references resolved to a ready
//! endpoint, the serving certificate verified against `caBundle`), `timeoutSeconds`,
//! `failurePolicy`, denials and warnings.

use crate::cluster::{Operation, PendingWrite};
use crate::rbac::UserInfo;
use crate::registry::GroupResource;
use crate::selectors::LabelSelector;
use crate::server::State;
use crate::status::ApiError;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::time::Duration;

/// A webhook call to make, resolved while holding the store lock.
struct Call {
    name: String,
    target: Result<Target, String>,
    fail_open: bool,
    timeout: Duration,
}

struct Target {
    /// Where to connect (pod IP or URL host) and the name the certificate must carry.
    address: String,
    server_name: String,
    path: String,
    ca_pem: Option<Vec<u8>>,
}

/// Sends the write to every matching webhook; returns their warnings, or the denial.
pub async fn review(state: &State, pending: &PendingWrite, user: &UserInfo) -> Result<Vec<String>, ApiError> {
    let (calls, request) = {
        let cluster = state.cluster.lock().unwrap();
        let vwc = GroupResource {
            group: "admissionregistration.k8s.io".into(),
            resource: "validatingwebhookconfigurations".into(),
        };
        let configs: Vec<Value> = cluster.store.list(&vwc, None).cloned().collect();
        if configs.is_empty() {
            return Ok(Vec::new());
        }
        let namespace = pending.new["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let ns_labels = if pending.rt.resource == "namespaces" {
            pending.new["metadata"]["labels"].clone()
        } else {
            let ns_gr = GroupResource { group: String::new(), resource: "namespaces".into() };
            cluster.store.get(&ns_gr, "", &namespace).map(|n| n["metadata"]["labels"].clone()).unwrap_or(Value::Null)
        };
        let review = admission_request(pending, user);
        let mut calls = Vec::new();
        for config in &configs {
            for hook in config["webhooks"].as_array().into_iter().flatten() {
                if !matches(hook, pending, &ns_labels) || !match_conditions(hook, &review["request"])? {
                    continue;
                }
                calls.push(Call {
                    name: hook["name"].as_str().unwrap_or_default().to_string(),
                    target: resolve(&cluster, &hook["clientConfig"]),
                    fail_open: hook["failurePolicy"] == "Ignore",
                    timeout: Duration::from_secs(hook["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30)),
                });
            }
        }
        (calls, review)
    };
    let mut warnings = Vec::new();
    for call in calls {
        let outcome = match &call.target {
            Ok(target) => tokio::time::timeout(call.timeout, send(target, &request))
                .await
                .unwrap_or_else(|_| Err(format!("context deadline exceeded (timeout {}s)", call.timeout.as_secs()))),
            Err(e) => Err(e.clone()),
        };
        match outcome {
            Ok(response) => {
                warnings.extend(
                    response["warnings"].as_array().into_iter().flatten().filter_map(|w| w.as_str().map(String::from)),
                );
                if response["allowed"] != Value::Bool(true) {
                    let status = &response["status"];
                    let code = status["code"].as_u64().filter(|c| (400..600).contains(c)).unwrap_or(403) as u16;
                    let message = status["message"].as_str().unwrap_or("");
                    let mut e = ApiError::new(
                        code,
                        "Forbidden",
                        format!("admission webhook \"{}\" denied the request: {message}", call.name),
                    );
                    if let Some(reason) = status["reason"].as_str() {
                        e.reason = static_reason(reason);
                    }
                    return Err(e);
                }
            }
            Err(error) if call.fail_open => {
                let _ = error;
            }
            Err(error) => {
                return Err(ApiError::new(
                    500,
                    "InternalError",
                    format!("Internal error occurred: failed calling webhook \"{}\": {error}", call.name),
                ));
            }
        }
    }
    Ok(warnings)
}

fn static_reason(reason: &str) -> &'static str {
    match reason {
        "Invalid" => "Invalid",
        "BadRequest" => "BadRequest",
        "Conflict" => "Conflict",
        _ => "Forbidden",
    }
}

fn matches(hook: &Value, pending: &PendingWrite, ns_labels: &Value) -> bool {
    let rt = &pending.rt;
    let op = pending.operation.as_str();
    let resource = match &pending.subresource {
        Some(sub) => format!("{}/{sub}", rt.resource),
        None => rt.resource.clone(),
    };
    let any = |list: &Value, want: &str| list.as_array().is_some_and(|l| l.iter().any(|x| x == "*" || x == want));
    let rule_matches = hook["rules"].as_array().into_iter().flatten().any(|rule| {
        let resources_ok = rule["resources"].as_array().is_some_and(|rs| {
            rs.iter().filter_map(Value::as_str).any(|r| {
                r == "*/*"
                    || r == resource
                    || (r == "*" && pending.subresource.is_none())
                    || r.strip_prefix("*/").is_some_and(|s| Some(s) == pending.subresource.as_deref())
                    || r.strip_suffix("/*").is_some_and(|b| b == rt.resource && pending.subresource.is_some())
            })
        });
        let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
            "Namespaced" => rt.namespaced,
            "Cluster" => !rt.namespaced,
            _ => true,
        };
        any(&rule["operations"], op)
            && any(&rule["apiGroups"], &rt.group)
            && any(&rule["apiVersions"], &rt.version)
            && resources_ok
            && scope_ok
    });
    if !rule_matches {
        return false;
    }
    if rt.namespaced || rt.resource == "namespaces" {
        let selector = LabelSelector::from_object(&hook["namespaceSelector"]);
        if !selector.matches(ns_labels) {
            return false;
        }
    }
    let object_selector = LabelSelector::from_object(&hook["objectSelector"]);
    let labels_new = &pending.new["metadata"]["labels"];
    let labels_old = pending.old.as_ref().map(|o| &o["metadata"]["labels"]);
    object_selector.matches(labels_new) || labels_old.is_some_and(|l| object_selector.matches(l))
}

/// The webhook's `matchConditions`: CEL expressions over `object`, `oldObject` and `request`
/// that must all be true for the webhook to be called. One that is false skips it; an
/// expression that fails to compile or evaluate refuses the request (403) under
/// `failurePolicy: Fail` and skips the webhook under `Ignore`, as the real dispatcher does.
fn match_conditions(hook: &Value, request: &Value) -> Result<bool, ApiError> {
    use kube_cel::KubeCelExt;
    use kube_cel::cel::{Context, Program, Value as Cel};
    let conditions = hook["matchConditions"].as_array().map(Vec::as_slice).unwrap_or_default();
    if conditions.is_empty() {
        return Ok(true);
    }
    let mut context = Context::default().with_all();
    for (name, value) in [("object", &request["object"]), ("oldObject", &request["oldObject"]), ("request", request)] {
        match kube_cel::cel::to_value(value) {
            Ok(v) => context.add_variable_from_value(name, v),
            Err(e) => return Err(ApiError::new(500, "InternalError", format!("cannot pass {name} to CEL: {e}"))),
        }
    }
    let mut errors = Vec::new();
    for condition in conditions {
        let expression = condition["expression"].as_str().unwrap_or_default();
        let outcome = match Program::compile(expression) {
            Ok(program) => program.execute(&context).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(Cel::Bool(false)) => return Ok(false),
            Ok(Cel::Bool(true)) => {}
            Ok(other) => errors.push(format!(
                "expression '{expression}' resulted in error: no such overload ({other:?} is not a bool)"
            )),
            Err(e) => errors.push(format!("expression '{expression}' resulted in error: {e}")),
        }
    }
    if errors.is_empty() {
        return Ok(true);
    }
    if hook["failurePolicy"] == "Ignore" {
        return Ok(false);
    }
    let resource = request["resource"]["resource"].as_str().unwrap_or_default();
    let group = request["resource"]["group"].as_str().unwrap_or_default();
    let resource = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
    let name = request["name"].as_str().unwrap_or_default();
    let errors = if errors.len() == 1 { errors.remove(0) } else { format!("[{}]", errors.join(", ")) };
    Err(ApiError::forbidden(format!("{resource} \"{name}\" is forbidden: {errors}")))
}

fn admission_request(pending: &PendingWrite, user: &UserInfo) -> Value {
    let rt = &pending.rt;
    // The objects as the request's API version serves them.
    let served = |o: &Value| crate::conversion::from_storage(rt, o);
    let old = pending.old.as_ref().map(served).unwrap_or(Value::Null);
    let (object, old) = match pending.operation {
        Operation::Create => (served(&pending.new), Value::Null),
        Operation::Update => (served(&pending.new), old),
        Operation::Delete => (Value::Null, old),
    };
    let options_kind = match pending.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
    };
    let kind = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let resource = json!({"group": rt.group, "version": rt.version, "resource": rt.resource});
    let mut request = json!({
        "uid": crate::tls::random_token(),
        "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
        "name": pending.new["metadata"]["name"], "namespace": pending.new["metadata"]["namespace"],
        "operation": pending.operation.as_str(),
        "userInfo": {"username": user.name, "groups": user.groups},
        "object": object, "oldObject": old, "dryRun": pending.dry_run,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"},
    });
    if let Some(sub) = &pending.subresource {
        request["subResource"] = json!(sub);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// Where a clientConfig points: a URL, or a service resolved to one of its ready endpoints.
fn resolve(cluster: &crate::cluster::Cluster, client: &Value) -> Result<Target, String> {
    let ca_pem = client["caBundle"]
        .as_str()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| format!("invalid caBundle: {e}")))
        .transpose()?;
    if let Some(url) = client["url"].as_str() {
        let rest = url.strip_prefix("https://").ok_or_else(|| format!("webhook URL must be https: {url}"))?;
        let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
        let server_name = host.rsplit_once(':').map_or(host, |(h, _)| h).to_string();
        let address = if host.contains(':') { host.to_string() } else { format!("{host}:443") };
        return Ok(Target { address, server_name, path, ca_pem });
    }
    let svc = &client["service"];
    let (namespace, name) = (svc["namespace"].as_str().unwrap_or_default(), svc["name"].as_str().unwrap_or_default());
    let port = svc["port"].as_i64().unwrap_or(443);
    let path = svc["path"].as_str().unwrap_or("/").to_string();
    let endpoint = crate::controllers::endpoints::resolve_service(cluster, namespace, name, port)?;
    Ok(Target { address: endpoint, server_name: format!("{name}.{namespace}.svc"), path, ca_pem })
}

async fn send(target: &Target, review: &Value) -> Result<Value, String> {
    let tcp = tokio::net::TcpStream::connect(&target.address).await.map_err(|e| {
        format!("Post \"https://{}{}\": dial tcp {}: {e}", target.server_name, target.path, target.address)
    })?;
    let mut connector =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).map_err(|e| e.to_string())?;
    if let Some(pem) = &target.ca_pem {
        let store = connector.cert_store_mut();
        for cert in openssl::x509::X509::stack_from_pem(pem).map_err(|e| format!("invalid caBundle: {e}"))? {
            store.add_cert(cert).map_err(|e| e.to_string())?;
        }
    }
    let ssl = connector.build().configure().and_then(|c| c.into_ssl(&target.server_name)).map_err(|e| e.to_string())?;
    let mut tls = hyper_openssl::SslStream::new(ssl, hyper_util::rt::TokioIo::new(tcp)).map_err(|e| e.to_string())?;
    std::pin::Pin::new(&mut tls).connect().await.map_err(|e| format!("tls: failed to verify certificate: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(tls).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let body = serde_json::to_vec(review).unwrap();
    let request = hyper::Request::post(&target.path)
        .header("host", &target.server_name)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !status.is_success() {
        return Err(format!("expected response code 200, got {status}"));
    }
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| format!("invalid AdmissionReview response: {e}"))?;
    let response = answer["response"].clone();
    if response.is_null() {
        return Err("AdmissionReview response is missing".into());
    }
    if response["uid"] != request_uid(review) {
        return Err(format!("expected response.uid={}, got {}", request_uid(review), response["uid"]));
    }
    Ok(response)
}

fn request_uid(review: &Value) -> Value {
    review["request"]["uid"].clone()
}
