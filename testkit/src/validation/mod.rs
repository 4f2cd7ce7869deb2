//! Validation on write, as the API server does it: built-in kinds decode into their typed
//! form; custom resources are pruned, defaulted and checked against their CRD schema.

pub mod builtin;
pub mod crd;
pub mod defaults;

use crate::registry::{ResourceType, Schema};
use crate::status::ApiError;
use serde_json::Value;

/// How unknown fields are treated (`fieldValidation` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Strict,
    #[default]
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn parse(value: Option<&str>) -> FieldValidation {
        match value {
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            _ => FieldValidation::Warn,
        }
    }
}

/// Validates and normalises `object` for storage (`old`: the stored object an update replaces).
/// Returns the object to store and warnings.
pub fn admit(
    rt: &ResourceType,
    object: Value,
    old: Option<&Value>,
    mode: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    validate_name(&rt.kind, &name, rt.resource == "namespaces" || !rt.namespaced && rt.group.is_empty())?;
    let (object, unknown) = match &rt.schema {
        Schema::Builtin => builtin::normalise(&rt.kind, object)?,
        Schema::Crd(schema) => crd::normalise(schema, object)?,
    };
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        match mode {
            FieldValidation::Strict => {
                let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                return Err(ApiError::bad_request(format!("strict decoding error: {}", list.join(", "))));
            }
            FieldValidation::Warn => warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\""))),
            FieldValidation::Ignore => {}
        }
    }
    match &rt.schema {
        Schema::Builtin => builtin::validate(&rt.kind, &name, &object)?,
        Schema::Crd(schema) => crd::validate(&rt.kind, &name, schema, &object, old)?,
    }
    Ok((object, warnings))
}

/// Server-side apply refuses an applied configuration with fields the type does not declare,
/// whatever `fieldValidation` says: the apply is computed on typed objects, which cannot hold
/// them (the real server answers 500, "field not declared in schema"). `config` is what the
/// client applied, `merged` the object it makes: built-in kinds are checked on `merged` (their
/// stored objects have no unknown fields, and a partial configuration may not decode), custom
/// resources on `config` (the schema walks partial objects, and a field that a changed schema
/// no longer declares in the stored object is not the client's).
pub fn check_applied_fields(rt: &ResourceType, config: &Value, merged: &Value) -> Result<(), ApiError> {
    let unknown = match &rt.schema {
        Schema::Builtin => builtin::normalise(&rt.kind, merged.clone()).map(|(_, unknown)| unknown).unwrap_or_default(),
        Schema::Crd(schema) => crd::normalise(schema, config.clone()).map(|(_, unknown)| unknown).unwrap_or_default(),
    };
    if unknown.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = unknown.iter().map(|f| format!(".{f}: field not declared in schema")).collect();
    let errors = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let meta = &merged["metadata"];
    Err(ApiError::new(
        500,
        "",
        format!(
            "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {errors}",
            meta["namespace"].as_str().unwrap_or_default(),
            meta["name"].as_str().unwrap_or_default(),
            rt.group,
            rt.version,
            rt.kind
        ),
    ))
}

/// Names are DNS subdomains (namespaces: DNS labels).
fn validate_name(kind: &str, name: &str, label: bool) -> Result<(), ApiError> {
    let max = if label { 63 } else { 253 };
    let ok = !name.is_empty()
        && name.len() <= max
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!label && c == '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    // RBAC and a few other kinds allow ':' in names (system:masters style).
    let rbac_ok = kind.contains("Role") && !name.is_empty() && !name.contains('/');
    if ok || rbac_ok {
        return Ok(());
    }
    let message = if name.is_empty() {
        "name or generateName is required".to_string()
    } else {
        format!(
            "a lowercase RFC 1123 {} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            if label { "label" } else { "subdomain" }
        )
    };
    Err(ApiError::invalid(kind, name, vec![("metadata.name".into(), message)]))
}
