//! Validating a custom resource document against its CRD's `openAPIV3Schema` before it is
//! sent: types, `nullable`, `enum`, `required`, unknown fields, numeric bounds, lengths, item
//! counts (`pattern` and CEL rules are left to the API server: kube-devops's own CRDs use
//! neither for DevOpsPolicy). The API server would refuse most of these, but it silently prunes an
//! unknown field, so a misspelt check (`forbidLatestTags`) would turn the check off; here it is
//! an error. The root's `apiVersion`, `kind` and `metadata` are checked as the server checks
//! every object's.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// Every problem of `document` against the served version of `crd` it names (empty: valid).
/// Each problem starts with the path of the field (`.spec.maxRestartCount: ...`).
pub fn validate(crd: &CustomResourceDefinition, document: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(object) = document.as_object() else {
        return vec!["not a Kubernetes object: expected a mapping".into()];
    };
    let group = &crd.spec.group;
    let kind = &crd.spec.names.kind;
    if object.get("kind").and_then(Value::as_str) != Some(kind.as_str()) {
        errors.push(format!(".kind: expected {kind}, found {}", show(object.get("kind"))));
        return errors;
    }
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let version = api_version
        .strip_prefix(&format!("{group}/"))
        .and_then(|v| crd.spec.versions.iter().find(|candidate| candidate.name == v && candidate.served));
    let Some(version) = version else {
        let served: Vec<String> =
            crd.spec.versions.iter().filter(|v| v.served).map(|v| format!("{group}/{}", v.name)).collect();
        errors.push(format!(".apiVersion: expected {}, found {}", served.join(" or "), show(object.get("apiVersion"))));
        return errors;
    };
    metadata(object.get("metadata"), crd.spec.scope == "Namespaced", &mut errors);
    if let Some(schema) = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) {
        let mut rest = document.clone();
        if let Some(map) = rest.as_object_mut() {
            for key in ["apiVersion", "kind", "metadata"] {
                map.remove(key);
            }
        }
        check(schema, &rest, "", &mut errors);
    }
    errors
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_string(), Value::to_string)
}

fn metadata(metadata: Option<&Value>, namespaced: bool, errors: &mut Vec<String>) {
    let Some(meta) = metadata.and_then(Value::as_object) else {
        errors.push(".metadata: required".into());
        return;
    };
    match meta.get("name").and_then(Value::as_str) {
        Some(name) if is_dns_subdomain(name) => {}
        Some(name) => errors.push(format!(
            ".metadata.name: {name:?} is not a valid name (lower-case letters, digits, '-' and '.', at most 253)"
        )),
        None => errors.push(".metadata.name: required".into()),
    }
    match meta.get("namespace") {
        None | Some(Value::Null) => {}
        Some(Value::String(ns)) if namespaced && is_dns_label(ns) => {}
        Some(Value::String(_)) if !namespaced => errors.push(".metadata.namespace: the kind is cluster-scoped".into()),
        Some(other) => errors.push(format!(".metadata.namespace: {other} is not a valid namespace name")),
    }
    for field in ["labels", "annotations"] {
        match meta.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    if !value.is_string() {
                        errors.push(format!(".metadata.{field}.{key}: expected a string, found {value}"));
                    }
                }
            }
            Some(other) => errors.push(format!(".metadata.{field}: expected a mapping, found {other}")),
        }
    }
}

/// A DNS-1123 subdomain (object names).
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(|part| is_label_chars(part, 253))
}

/// A DNS-1123 label (namespace names).
fn is_dns_label(name: &str) -> bool {
    is_label_chars(name, 63)
}

fn is_label_chars(part: &str, max: usize) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn check(schema: &JSONSchemaProps, value: &Value, path: &str, errors: &mut Vec<String>) {
    let at = if path.is_empty() { "." } else { path };
    if value.is_null() {
        if schema.nullable != Some(true) {
            errors.push(format!("{at}: must not be null"));
        }
        return;
    }
    if let Some(values) = &schema.enum_
        && !values.iter().any(|allowed| &allowed.0 == value)
    {
        let allowed: Vec<String> = values.iter().filter(|v| !v.0.is_null()).map(|v| v.0.to_string()).collect();
        errors.push(format!("{at}: {value} is not one of {}", allowed.join(", ")));
        return;
    }
    let int_or_string = schema.x_kubernetes_int_or_string == Some(true);
    let type_ok = match schema.type_.as_deref() {
        _ if int_or_string => value.is_string() || value.is_i64() || value.is_u64(),
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        _ => true,
    };
    if !type_ok {
        let expected = schema.type_.as_deref().unwrap_or("int-or-string");
        errors.push(format!("{at}: expected {expected}, found {}", kind_of(value)));
        return;
    }
    match value {
        Value::Object(map) => object(schema, map, path, errors),
        Value::Array(items) => array(schema, items, path, errors),
        Value::String(text) => string(schema, text, at, errors),
        Value::Number(number) => bounds(schema, number.as_f64().unwrap_or(0.0), at, errors),
        _ => {}
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn object(schema: &JSONSchemaProps, map: &serde_json::Map<String, Value>, path: &str, errors: &mut Vec<String>) {
    for name in schema.required.iter().flatten() {
        if !map.contains_key(name) {
            errors.push(format!("{path}.{name}: required"));
        }
    }
    let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    for (key, child) in map {
        let child_path = format!("{path}.{key}");
        if let Some(property) = schema.properties.as_ref().and_then(|p| p.get(key)) {
            check(property, child, &child_path, errors);
        } else {
            match &schema.additional_properties {
                Some(JSONSchemaPropsOrBool::Schema(additional)) => check(additional, child, &child_path, errors),
                Some(JSONSchemaPropsOrBool::Bool(true)) => {}
                _ if preserve => {}
                _ => errors.push(format!("{child_path}: unknown field (the API server would drop it)")),
            }
        }
    }
    if let Some(max) = schema.max_properties
        && map.len() as i64 > max
    {
        errors.push(format!("{path}: at most {max} properties"));
    }
}

fn array(schema: &JSONSchemaProps, items: &[Value], path: &str, errors: &mut Vec<String>) {
    if let Some(max) = schema.max_items
        && items.len() as i64 > max
    {
        errors.push(format!("{path}: at most {max} items, found {}", items.len()));
    }
    if let Some(min) = schema.min_items
        && (items.len() as i64) < min
    {
        errors.push(format!("{path}: at least {min} items, found {}", items.len()));
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
        for (i, value) in items.iter().enumerate() {
            check(item, value, &format!("{path}[{i}]"), errors);
        }
    }
}

fn string(schema: &JSONSchemaProps, text: &str, at: &str, errors: &mut Vec<String>) {
    let length = text.chars().count() as i64;
    if let Some(max) = schema.max_length
        && length > max
    {
        errors.push(format!("{at}: at most {max} characters, found {length}"));
    }
    if let Some(min) = schema.min_length
        && length < min
    {
        errors.push(format!("{at}: at least {min} characters, found {length}"));
    }
}

fn bounds(schema: &JSONSchemaProps, number: f64, at: &str, errors: &mut Vec<String>) {
    if let Some(min) = schema.minimum {
        let exclusive = schema.exclusive_minimum == Some(true);
        if number < min || (exclusive && number == min) {
            let relation = if exclusive { "more than" } else { "at least" };
            errors.push(format!("{at}: must be {relation} {min}, found {number}"));
        }
    }
    if let Some(max) = schema.maximum {
        let exclusive = schema.exclusive_maximum == Some(true);
        if number > max || (exclusive && number == max) {
            let relation = if exclusive { "less than" } else { "at most" };
            errors.push(format!("{at}: must be {relation} {max}, found {number}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DevOpsPolicy;
    use kube::CustomResourceExt;
    use serde_json::json;

    fn errors(document: Value) -> Vec<String> {
        validate(&DevOpsPolicy::crd(), &document)
    }

    fn policy(spec: Value) -> Value {
        json!({"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy",
               "metadata": {"name": "baseline", "namespace": "shop", "labels": {"team": "a"}}, "spec": spec})
    }

    #[test]
    fn a_bundle_policy_is_valid() {
        for bundle in crate::api::bundles::Bundle::all() {
            let document = serde_json::to_value(bundle.policy("shop", None)).unwrap();
            assert_eq!(errors(document), Vec::<String>::new(), "{}", bundle.name);
        }
    }

    #[test]
    fn unknown_fields_wrong_types_enums_and_bounds_are_named_by_path() {
        let found = errors(policy(json!({
            "forbidLatestTags": true,
            "requireResources": "yes",
            "maxRestartCount": -1,
            "enforcementMode": "strict",
            "severityOverrides": {"latestTag": "urgent"},
            "defaultProbe": {"tcpPort": 70000, "periodSeconds": 1.5},
        })));
        assert_eq!(
            found,
            [
                ".spec.defaultProbe.periodSeconds: expected integer, found number",
                ".spec.defaultProbe.tcpPort: must be at most 65535, found 70000",
                ".spec.enforcementMode: \"strict\" is not one of \"audit\", \"enforce\"",
                ".spec.forbidLatestTags: unknown field (the API server would drop it)",
                ".spec.maxRestartCount: must be at least 0, found -1",
                ".spec.requireResources: expected boolean, found string",
                ".spec.severityOverrides.latestTag: \"urgent\" is not one of \"low\", \"medium\", \"high\", \"critical\"",
            ]
        );
    }

    #[test]
    fn nullable_fields_may_be_null_and_required_ones_must_be_there() {
        assert_eq!(errors(policy(json!({"maxRestartCount": null}))), Vec::<String>::new());
        let mut no_spec = policy(json!({}));
        no_spec.as_object_mut().unwrap().remove("spec");
        assert_eq!(errors(no_spec), [".spec: required"]);
        assert_eq!(errors(policy(json!(null))), [".spec: must not be null"]);
    }

    #[test]
    fn kind_api_version_and_metadata_are_checked() {
        let mut wrong_kind = policy(json!({}));
        wrong_kind["kind"] = json!("ConfigMap");
        assert_eq!(errors(wrong_kind), [".kind: expected DevOpsPolicy, found \"ConfigMap\""]);
        let mut old_version = policy(json!({}));
        old_version["apiVersion"] = json!("devops.stochastic.io/v1beta1");
        assert_eq!(
            errors(old_version),
            [".apiVersion: expected devops.stochastic.io/v1, found \"devops.stochastic.io/v1beta1\""]
        );
        let mut bad_meta = policy(json!({}));
        bad_meta["metadata"] = json!({"name": "Bad_Name", "namespace": "shop", "labels": {"n": 1}});
        let found = errors(bad_meta);
        assert!(found[0].starts_with(".metadata.name: \"Bad_Name\" is not a valid name"), "{found:?}");
        assert_eq!(found[1], ".metadata.labels.n: expected a string, found 1");
        let mut unnamed = policy(json!({}));
        unnamed["metadata"] = json!({});
        assert_eq!(errors(unnamed), [".metadata.name: required"]);
    }
}
