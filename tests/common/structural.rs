//! Checks objects against a CRD's structural `openAPIV3Schema` the way the API server does,
//! with the testkit API server's own validation: unknown fields (which the server would prune,
//! so here they are errors: a pruned field is one the user believes is set and is not), then
//! types, `required`, `enum`, bounds, `pattern` and CEL rules.

use serde_json::Value;

pub fn check(schema: &Value, value: &Value) -> Vec<String> {
    let (normalised, pruned) = match testkit::validation::crd::normalise(schema, value.clone()) {
        Ok(result) => result,
        Err(e) => return vec![e.message],
    };
    let mut errors: Vec<String> =
        pruned.iter().map(|f| format!(".{f}: unknown field (the API server would prune it)")).collect();
    if let Err(e) = testkit::validation::crd::validate("object", "test", schema, &normalised, None) {
        errors.push(e.message);
    }
    errors
}
