//! Built-in kinds: decoded into their k8s-openapi types (which drops unknown fields, reported
//! back so `fieldValidation=Strict` can refuse them), plus the validations this project's code
//! paths rely on.

use crate::selectors::LabelSelector;
use crate::status::ApiError;
use base64::Engine;
use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, batch::v1 as batch, coordination::v1 as coordination,
    core::v1 as core, events::v1 as events, policy::v1 as policy, rbac::v1 as rbac,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use serde_json::Value;

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(kind: &str, object: &Value) -> Result<Value, ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let typed: T = serde_json::from_value(object.clone())
        .map_err(|e| ApiError::invalid(kind, name, vec![("<body>".into(), format!("cannot decode {kind}: {e}"))]))?;
    Ok(serde_json::to_value(typed).expect("typed objects serialize"))
}

/// Decodes into the typed form; returns it and the paths of unknown fields that were dropped.
pub fn normalise(kind: &str, mut object: Value) -> Result<(Value, Vec<String>), ApiError> {
    if kind == "Secret" {
        fold_string_data(&mut object);
    }
    let typed = match kind {
        "Namespace" => roundtrip::<core::Namespace>(kind, &object)?,
        "Pod" => roundtrip::<core::Pod>(kind, &object)?,
        "Service" => roundtrip::<core::Service>(kind, &object)?,
        "Endpoints" => roundtrip::<core::Endpoints>(kind, &object)?,
        "ServiceAccount" => roundtrip::<core::ServiceAccount>(kind, &object)?,
        "Secret" => roundtrip::<core::Secret>(kind, &object)?,
        "ConfigMap" => roundtrip::<core::ConfigMap>(kind, &object)?,
        "Event" if object["apiVersion"] == "events.k8s.io/v1" => roundtrip::<events::Event>(kind, &object)?,
        "Event" => roundtrip::<core::Event>(kind, &object)?,
        "Deployment" => roundtrip::<apps::Deployment>(kind, &object)?,
        "ReplicaSet" => roundtrip::<apps::ReplicaSet>(kind, &object)?,
        "StatefulSet" => roundtrip::<apps::StatefulSet>(kind, &object)?,
        "DaemonSet" => roundtrip::<apps::DaemonSet>(kind, &object)?,
        "Job" => roundtrip::<batch::Job>(kind, &object)?,
        "CronJob" => roundtrip::<batch::CronJob>(kind, &object)?,
        "PodDisruptionBudget" => roundtrip::<policy::PodDisruptionBudget>(kind, &object)?,
        "NetworkPolicy" => roundtrip::<k8s_openapi::api::networking::v1::NetworkPolicy>(kind, &object)?,
        "Lease" => roundtrip::<coordination::Lease>(kind, &object)?,
        "ClusterRole" => roundtrip::<rbac::ClusterRole>(kind, &object)?,
        "ClusterRoleBinding" => roundtrip::<rbac::ClusterRoleBinding>(kind, &object)?,
        "Role" => roundtrip::<rbac::Role>(kind, &object)?,
        "RoleBinding" => roundtrip::<rbac::RoleBinding>(kind, &object)?,
        "ValidatingWebhookConfiguration" => roundtrip::<admission::ValidatingWebhookConfiguration>(kind, &object)?,
        "CustomResourceDefinition" => roundtrip::<apiextensions::CustomResourceDefinition>(kind, &object)?,
        other => return Err(ApiError::bad_request(format!("no decoder for kind {other}"))),
    };
    let mut unknown = Vec::new();
    dropped_fields(&object, &typed, "", &mut unknown);
    let mut typed = typed;
    super::defaults::apply(kind, &mut typed);
    // The real server's typed objects have no explicit nulls (a client sees a field missing,
    // not `null`, e.g. in `kubectl get -o jsonpath`). A CRD's schema keeps its nulls: they
    // may be part of a `default` or an `example`.
    if kind != "CustomResourceDefinition" {
        strip_nulls(&mut typed);
    }
    Ok((typed, unknown))
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Paths present (non-null) in `original` but missing from `typed`.
fn dropped_fields(original: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in o {
                let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match t.get(k) {
                    Some(tv) => dropped_fields(v, tv, &child, out),
                    None if !v.is_null() => out.push(child),
                    None => {}
                }
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, (a, b)) in o.iter().zip(t).enumerate() {
                dropped_fields(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `stringData` is write-only: the API server folds it into `data`.
fn fold_string_data(secret: &mut Value) {
    let Some(Value::Object(string_data)) = secret.as_object_mut().and_then(|s| s.remove("stringData")) else { return };
    if !secret["data"].is_object() {
        secret["data"] = Value::Object(Default::default());
    }
    for (k, v) in string_data {
        let encoded = base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default());
        secret["data"][k] = Value::String(encoded);
    }
}

/// The semantic checks the real API server makes that this project's code paths can trip.
pub fn validate(kind: &str, name: &str, object: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    match kind {
        "Pod" => check_pod_spec(&object["spec"], "spec", &mut causes),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            let spec = &object["spec"];
            if !spec["selector"].is_object() {
                causes.push(("spec.selector".into(), "Required value".into()));
            } else {
                let selector = LabelSelector::from_object(&spec["selector"]);
                if selector.is_empty() {
                    causes.push((
                        "spec.selector".into(),
                        "Invalid value: empty selector is invalid for deployment".into(),
                    ));
                } else if !selector.matches(&spec["template"]["metadata"]["labels"]) {
                    causes.push((
                        "spec.template.metadata.labels".into(),
                        "Invalid value: `selector` does not match template `labels`".into(),
                    ));
                }
            }
            if let Some(r) = spec["replicas"].as_i64()
                && r < 0
            {
                causes.push(("spec.replicas".into(), "Invalid value: must be greater than or equal to 0".into()));
            }
            check_pod_spec(&spec["template"]["spec"], "spec.template.spec", &mut causes);
        }
        "Job" => check_pod_spec(&object["spec"]["template"]["spec"], "spec.template.spec", &mut causes),
        "CronJob" => check_pod_spec(
            &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "spec.jobTemplate.spec.template.spec",
            &mut causes,
        ),
        "Service" => {
            for (i, port) in object["spec"]["ports"].as_array().into_iter().flatten().enumerate() {
                if port["port"].as_i64().is_none_or(|p| !(1..=65535).contains(&p)) {
                    causes.push((format!("spec.ports[{i}].port"), "Invalid value: must be between 1 and 65535".into()));
                }
            }
        }
        "PodDisruptionBudget" => {
            let spec = &object["spec"];
            if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
                causes
                    .push(("spec".into(), "Invalid value: minAvailable and maxUnavailable cannot be both set".into()));
            }
        }
        _ => {}
    }
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid(kind, name, causes)) }
}

fn check_pod_spec(spec: &Value, path: &str, causes: &mut Vec<(String, String)>) {
    let containers = spec["containers"].as_array().map(Vec::as_slice).unwrap_or_default();
    if containers.is_empty() {
        causes.push((format!("{path}.containers"), "Required value".into()));
    }
    let init = spec["initContainers"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut names = std::collections::BTreeSet::new();
    for (list, field) in [(containers, "containers"), (init, "initContainers")] {
        for (i, c) in list.iter().enumerate() {
            let name = c["name"].as_str().unwrap_or_default();
            if name.is_empty() {
                causes.push((format!("{path}.{field}[{i}].name"), "Required value".into()));
            } else if !names.insert(name.to_string()) {
                causes.push((format!("{path}.{field}[{i}].name"), format!("Duplicate value: \"{name}\"")));
            }
            if c["image"].as_str().is_none_or(str::is_empty) {
                causes.push((format!("{path}.{field}[{i}].image"), "Required value".into()));
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                check_probe(&c[probe], &format!("{path}.{field}[{i}].{probe}"), causes);
            }
            check_resources(&c["resources"], &format!("{path}.{field}[{i}].resources"), causes);
        }
    }
}

/// A probe names exactly one way to probe (exec, httpGet, tcpSocket, grpc).
fn check_probe(probe: &Value, path: &str, causes: &mut Vec<(String, String)>) {
    let Some(probe) = probe.as_object() else { return };
    let handlers = ["exec", "httpGet", "tcpSocket", "grpc"].iter().filter(|h| probe.contains_key(**h)).count();
    match handlers {
        0 => causes.push((path.to_string(), "Required value: must specify a handler type".into())),
        1 => {}
        _ => causes.push((path.to_string(), "Forbidden: may not specify more than 1 handler type".into())),
    }
}

/// A request is no more than the limit of the same resource.
fn check_resources(resources: &Value, path: &str, causes: &mut Vec<(String, String)>) {
    let (Some(requests), Some(limits)) = (resources["requests"].as_object(), resources["limits"].as_object()) else {
        return;
    };
    for (name, request) in requests {
        let (Some(request), Some(limit)) = (request.as_str(), limits.get(name).and_then(Value::as_str)) else {
            continue;
        };
        if let (Some(r), Some(l)) = (quantity(request), quantity(limit))
            && r > l
        {
            let message =
                format!("Invalid value: \"{request}\": must be less than or equal to {name} limit of {limit}");
            causes.push((format!("{path}.requests"), message));
        }
    }
}

/// A resource quantity (`500m`, `1.5`, `128Mi`, `2G`, `1e3`) as a number, for comparisons.
fn quantity(text: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    text.parse::<f64>().ok()
}
