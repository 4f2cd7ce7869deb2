//! Resources served in two shapes over one storage, as the real server converts between API
//! versions: core/v1 and events.k8s.io/v1 Events are one resource (stored in the core shape),
//! so an Event written through either API is read through both (`kubectl describe` lists
//! core/v1 Events; kube-runtime's recorder writes events.k8s.io/v1 ones).

use crate::registry::ResourceType;
use serde_json::{Map, Value};

/// events.k8s.io/v1 field -> core/v1 field; every other field has the same name in both.
const EVENT_FIELDS: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// A stored object as `rt` serves it, without a copy when the shapes are the same (for
/// selectors; `apiVersion` is left as stored).
pub fn served_view<'a>(rt: &ResourceType, object: &'a Value) -> std::borrow::Cow<'a, Value> {
    if is_events_v1(rt) {
        std::borrow::Cow::Owned(from_storage(rt, object))
    } else {
        std::borrow::Cow::Borrowed(object)
    }
}

fn is_events_v1(rt: &ResourceType) -> bool {
    rt.group == "events.k8s.io" && rt.resource == "events"
}

fn rename(object: &Value, from_to: impl Fn(&str) -> Option<&'static str>, api_version: &str) -> Value {
    let Value::Object(map) = object else { return object.clone() };
    let mut out = Map::new();
    for (key, value) in map {
        let key = from_to(key).map(String::from).unwrap_or_else(|| key.clone());
        out.insert(key, value.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(out)
}

/// The stored shape of an object written through `rt`.
pub fn to_storage(rt: &ResourceType, object: Value) -> Value {
    if !is_events_v1(rt) {
        return object;
    }
    rename(&object, |k| EVENT_FIELDS.iter().find(|(v1, _)| *v1 == k).map(|(_, core)| *core), "v1")
}

/// A stored object as `rt` serves it (its apiVersion set).
pub fn from_storage(rt: &ResourceType, object: &Value) -> Value {
    if is_events_v1(rt) {
        return rename(
            object,
            |k| EVENT_FIELDS.iter().find(|(_, core)| *core == k).map(|(v1, _)| *v1),
            &rt.api_version(),
        );
    }
    let mut object = object.clone();
    object["apiVersion"] = Value::String(rt.api_version());
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn an_events_v1_event_is_a_core_event_and_back() {
        let registry = Registry::new(&[]);
        let v1 = registry.find("events.k8s.io", "v1", "events").unwrap();
        let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "KubeDevopsInstall", "name": "default"}, "note": "issued", "reason": "CertificateIssued",
            "reportingController": "kube-devops-operator", "deprecatedCount": 2, "type": "Normal"});
        let stored = to_storage(v1, event.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["kind"], "KubeDevopsInstall");
        assert_eq!((stored["message"].as_str(), stored["count"].as_i64()), (Some("issued"), Some(2)));
        assert_eq!(stored["reportingComponent"], "kube-devops-operator");
        assert_eq!(from_storage(v1, &stored), event);
    }
}
