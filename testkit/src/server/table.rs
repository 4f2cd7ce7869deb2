//! `Accept: ...;as=Table` responses, which kubectl prints: NAME and AGE, kind-specific columns
//! for pods and deployments, and a CRD's additionalPrinterColumns (JSONPath, with filters).

use crate::registry::ResourceType;
use serde_json::{Value, json};

type CellsFn = Box<dyn Fn(&Value) -> Vec<Value>>;

pub fn table(rt: &ResourceType, objects: &[Value], resource_version: &str) -> Value {
    let (columns, cells): (Vec<(&str, &str)>, CellsFn) = match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => (
            vec![
                ("Name", "string"),
                ("Ready", "string"),
                ("Status", "string"),
                ("Restarts", "string"),
                ("Age", "string"),
            ],
            Box::new(|o: &Value| {
                let statuses = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
                let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
                let ready = statuses.iter().filter(|s| s["ready"] == Value::Bool(true)).count();
                let restarts: i64 = statuses.iter().filter_map(|s| s["restartCount"].as_i64()).sum();
                let phase = if o["metadata"]["deletionTimestamp"].is_null() {
                    o["status"]["phase"].as_str().unwrap_or("Pending")
                } else {
                    "Terminating"
                };
                vec![name(o), json!(format!("{ready}/{total}")), json!(phase), json!(restarts.to_string()), age(o)]
            }),
        ),
        ("apps", "deployments") => (
            vec![
                ("Name", "string"),
                ("Ready", "string"),
                ("Up-to-date", "integer"),
                ("Available", "integer"),
                ("Age", "string"),
            ],
            Box::new(|o: &Value| {
                let s = &o["status"];
                let ready = format!(
                    "{}/{}",
                    s["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                );
                vec![
                    name(o),
                    json!(ready),
                    json!(s["updatedReplicas"].as_i64().unwrap_or(0)),
                    json!(s["availableReplicas"].as_i64().unwrap_or(0)),
                    age(o),
                ]
            }),
        ),
        _ if !rt.printer_columns.is_empty() => {
            let defs: Vec<(String, String, String)> = rt
                .printer_columns
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["type"].as_str().unwrap_or("string").to_string(),
                        c["jsonPath"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            let mut columns =
                vec![json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0})];
            // A column's priority is the CRD's (kubectl shows those above 0 only with `-o wide`).
            for ((n, t, _), c) in defs.iter().zip(&rt.printer_columns) {
                let (description, priority) =
                    (c["description"].as_str().unwrap_or_default(), c["priority"].as_i64().unwrap_or(0));
                columns.push(json!({"name": n, "type": if t == "date" { "date" } else { t.as_str() }, "format": "", "description": description, "priority": priority}));
            }
            let rows: Vec<Value> = objects
                .iter()
                .map(|o| {
                    let mut cells = vec![name(o)];
                    for (_, t, path) in &defs {
                        let v = jsonpath(o, path);
                        cells.push(match (t.as_str(), &v) {
                            (_, Value::Null) => Value::Null,
                            ("date", Value::String(s)) => json!(since(s)),
                            _ => v,
                        });
                    }
                    json!({"cells": cells, "object": partial(o)})
                })
                .collect();
            return json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "columnDefinitions": columns, "rows": rows});
        }
        _ => (vec![("Name", "string"), ("Age", "string")], Box::new(|o: &Value| vec![name(o), age(o)])),
    };
    let columns: Vec<Value> = columns
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t, "format": if *n == "Name" { "name" } else { "" }, "description": n, "priority": 0}))
        .collect();
    let rows: Vec<Value> = objects.iter().map(|o| json!({"cells": cells(o), "object": partial(o)})).collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "columnDefinitions": columns, "rows": rows})
}

fn name(o: &Value) -> Value {
    o["metadata"]["name"].clone()
}

fn age(o: &Value) -> Value {
    json!(o["metadata"]["creationTimestamp"].as_str().map(since).unwrap_or_else(|| "<unknown>".into()))
}

fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

/// A short age like kubectl prints: 12s, 5m, 3h, 2d.
pub fn since(timestamp: &str) -> String {
    let Ok(t) = timestamp.parse::<jiff::Timestamp>() else { return "<invalid>".into() };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match secs {
        0..120 => format!("{secs}s"),
        120..7200 => format!("{}m", secs / 60),
        7200..172800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// The JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`.
pub fn jsonpath(object: &Value, path: &str) -> Value {
    let mut current = vec![object.clone()];
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}').trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            current = current.iter().map(|v| v[field].clone()).filter(|v| !v.is_null()).collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { return Value::Null };
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let Some((field, value)) = filter.split_once("==") else { return Value::Null };
                let value = value.trim().trim_matches('"').trim_matches('\'');
                current = current
                    .iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .filter(|item| item[field.trim()].as_str() == Some(value) || item[field.trim()] == value)
                    .collect();
            } else if let Ok(i) = inner.parse::<usize>() {
                current = current.iter().map(|v| v[i].clone()).filter(|v| !v.is_null()).collect();
            } else if inner == "*" {
                current = current.iter().flat_map(|v| v.as_array().cloned().unwrap_or_default()).collect();
            } else {
                return Value::Null;
            }
        } else {
            return Value::Null;
        }
    }
    match current.len() {
        0 => Value::Null,
        1 => current.remove(0),
        _ => Value::String(
            current
                .iter()
                .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(","),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_column_paths_are_evaluated() {
        let o = json!({"status": {"healthScore": 87, "conditions": [
            {"type": "Progressing", "status": "False"}, {"type": "Available", "status": "True"}]}});
        assert_eq!(jsonpath(&o, ".status.healthScore"), json!(87));
        assert_eq!(jsonpath(&o, ".status.conditions[?(@.type==\"Available\")].status"), json!("True"));
        assert_eq!(jsonpath(&o, ".status.conditions[0].type"), json!("Progressing"));
        assert_eq!(jsonpath(&o, ".status.missing"), Value::Null);
    }
}
