//! Custom resources against their CRD's structural `openAPIV3Schema`: unknown fields pruned,
//! `default`s applied, then types, `required`, `enum`, bounds, `pattern` and
//! `x-kubernetes-validations` CEL rules (evaluated by the kube-cel crate).

use crate::status::ApiError;
use serde_json::{Map, Value};

/// Prunes unknown fields and applies defaults; returns the object and the pruned paths.
pub fn normalise(schema: &Value, mut object: Value) -> Result<(Value, Vec<String>), ApiError> {
    let mut pruned = Vec::new();
    if let Value::Object(map) = &mut object {
        let preserve = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
        // apiVersion, kind and metadata are not part of the schema's concern.
        for (key, child) in map.iter_mut() {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match schema["properties"].get(key) {
                Some(child_schema) => prune(child_schema, child, key, &mut pruned),
                None if !preserve => pruned.push(key.clone()),
                None => {}
            }
        }
        if !preserve {
            map.retain(|k, _| {
                matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || schema["properties"].get(k).is_some()
            });
        }
    }
    let defaulted = kube_cel::apply_defaults(schema, &object);
    Ok((defaulted, pruned))
}

fn prune(schema: &Value, value: &mut Value, path: &str, pruned: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) && schema["properties"].is_null() {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
            let mut remove = Vec::new();
            for (key, child) in map.iter_mut() {
                let child_path = format!("{path}.{key}");
                if child.is_null()
                    && properties.and_then(|p| p.get(key)).is_some_and(|s| s["nullable"] != Value::Bool(true))
                {
                    // A null for a non-nullable field means "unset".
                    remove.push(key.clone());
                } else if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    prune(child_schema, child, &child_path, pruned);
                } else if let Some(additional) = additional {
                    prune(additional, child, &child_path, pruned);
                } else if !preserve && !schema["x-kubernetes-embedded-resource"].as_bool().unwrap_or(false) {
                    pruned.push(child_path);
                    remove.push(key.clone());
                }
            }
            for key in remove {
                map.remove(&key);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                prune(&schema["items"], item, &format!("{path}[{i}]"), pruned);
            }
        }
        _ => {}
    }
}

/// Structural checks and CEL rules; a 422 Invalid listing every cause. On an update (`old`),
/// transition rules (`oldSelf`) are evaluated, and errors about values the update leaves as
/// they were are dropped: validation ratcheting, as the real server does since 1.30, so an
/// object stored before its CRD got stricter can still be updated elsewhere.
pub fn validate(kind: &str, name: &str, schema: &Value, object: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if let Value::Object(map) = object {
        let root = Map::from_iter(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        check(schema, &Value::Object(root), "", &mut causes);
    }
    let unchanged = |path: &str| old.is_some_and(|old| at_path(old, path) == at_path(object, path));
    causes.retain(|(path, _)| !unchanged(path));
    if causes.is_empty() {
        // CEL rules see the whole object (rules at the root may read self.metadata.name).
        if let Err(errors) = kube_cel::Validator::new().validate(schema, object, old) {
            for e in errors.as_slice() {
                if e.rule.contains("oldSelf") || !unchanged(&e.field_path) {
                    causes.push((e.field_path.clone(), e.message.clone()));
                }
            }
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid(kind, name, causes)) }
}

/// The value at a cause's field path (`spec.items[0].name`, `<root>`); null when absent.
fn at_path<'a>(object: &'a Value, path: &str) -> &'a Value {
    let mut current = object;
    for part in path.split('.').filter(|p| !p.is_empty() && *p != "<root>") {
        let (field, indexes) = part.split_once('[').map_or((part, ""), |(f, rest)| (f, rest));
        if !field.is_empty() {
            current = &current[field];
        }
        for index in indexes.split('[').map(|i| i.trim_end_matches(']')).filter(|i| !i.is_empty()) {
            current = match index.parse::<usize>() {
                Ok(i) => &current[i],
                Err(_) => &current[index.trim_matches('"')],
            };
        }
    }
    current
}

fn check(schema: &Value, value: &Value, path: &str, causes: &mut Vec<(String, String)>) {
    let field = |p: &str| if p.is_empty() { "<root>".to_string() } else { p.trim_start_matches('.').to_string() };
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            causes.push((field(path), "Invalid value: \"null\": must not be null".into()));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            causes.push((field(path), format!("Invalid value: {value}: must be an integer or a string")));
        }
        return;
    }
    let ty = schema["type"].as_str();
    let ok = match ty {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        let found = match value {
            Value::Object(_) => "object",
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        };
        causes.push((
            field(path),
            format!(
                "Invalid value: \"{found}\": {path} in body must be of type {}: \"{found}\"",
                ty.unwrap_or("?"),
                path = field(path)
            ),
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        causes.push((field(path), format!("Unsupported value: {value}: supported values: {}", list.join(", "))));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            causes.push((
                field(path),
                format!("Invalid value: {value}: {} in body should be greater than or equal to {min}", field(path)),
            ));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            causes.push((
                field(path),
                format!("Invalid value: {value}: {} in body should be less than or equal to {max}", field(path)),
            ));
        }
    }
    if let Some(s) = value.as_str() {
        if let Some(pattern) = schema["pattern"].as_str() {
            match regex::Regex::new(pattern) {
                Ok(re) if !re.is_match(s) => causes.push((
                    field(path),
                    format!("Invalid value: \"{s}\": {} in body should match '{pattern}'", field(path)),
                )),
                Err(e) => causes.push((field(path), format!("invalid pattern {pattern:?}: {e}"))),
                _ => {}
            }
        }
        if let Some(max) = schema["maxLength"].as_u64()
            && s.chars().count() as u64 > max
        {
            causes.push((field(path), format!("Too long: may not be more than {max} bytes")));
        }
        if let Some(min) = schema["minLength"].as_u64()
            && (s.chars().count() as u64) < min
        {
            causes.push((field(path), format!("Invalid value: \"{s}\": should be at least {min} chars long")));
        }
    }
    match value {
        Value::Object(map) => {
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !map.contains_key(required) {
                    causes.push((
                        format!("{}.{required}", field(path)).trim_start_matches("<root>.").to_string(),
                        "Required value".into(),
                    ));
                }
            }
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if let Some(s) = schema["properties"].get(key) {
                    check(s, child, &child_path, causes);
                } else if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                    check(additional, child, &child_path, causes);
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                causes.push((field(path), format!("Too many: {}: must have at most {max} items", items.len())));
            }
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                causes.push((field(path), format!("Invalid value: {}: should have at least {min} items", items.len())));
            }
            for (i, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), causes);
            }
        }
        _ => {}
    }
}
