//! API errors as the standard `Status` body (`kind: Status`, `reason`, `code`, `details`).

use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into(), details: Value::Null }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    pub fn not_found(resource: &str, name: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(json!({"name": name, "kind": resource_kind(resource)}))
    }

    pub fn already_exists(resource: &str, name: &str) -> ApiError {
        ApiError::new(409, "AlreadyExists", format!("{resource} \"{name}\" already exists"))
            .with_details(json!({"name": name, "kind": resource_kind(resource)}))
    }

    pub fn conflict(resource: &str, name: &str, why: &str) -> ApiError {
        ApiError::new(409, "Conflict", format!("Operation cannot be fulfilled on {resource} \"{name}\": {why}"))
            .with_details(json!({"name": name, "kind": resource_kind(resource)}))
    }

    pub fn invalid(kind: &str, name: &str, causes: Vec<(String, String)>) -> ApiError {
        let summary: Vec<String> = causes.iter().map(|(field, msg)| format!("{field}: {msg}")).collect();
        let causes: Vec<Value> = causes
            .into_iter()
            .map(|(field, message)| json!({"reason": "FieldValueInvalid", "message": message, "field": field}))
            .collect();
        ApiError::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {}", summary.join(", ")))
            .with_details(json!({"name": name, "kind": kind, "causes": causes}))
    }

    /// From a complete `Status` body (e.g. the RBAC authorizer's 403).
    pub fn from_status(status: Value) -> ApiError {
        let code = status["code"].as_u64().unwrap_or(500) as u16;
        let reason = match status["reason"].as_str() {
            Some("Forbidden") => "Forbidden",
            Some("NotFound") => "NotFound",
            _ => "InternalError",
        };
        ApiError {
            code,
            reason,
            message: status["message"].as_str().unwrap_or_default().to_string(),
            details: status["details"].clone(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn body(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `deployments.apps` -> `deployments`, used as `details.kind` like the real server.
fn resource_kind(resource: &str) -> &str {
    resource.split('.').next().unwrap_or(resource)
}
