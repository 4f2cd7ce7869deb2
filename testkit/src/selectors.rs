//! Label and field selectors as the API server parses them.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`a=b,c!=d,e in (f,g),!h`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = split_word(part, " notin ") {
                Requirement::NotIn(k, parse_set(&rest)?)
            } else if let Some((k, rest)) = split_word(part, " in ") {
                Requirement::In(k, parse_set(&rest)?)
            } else if part.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                Requirement::Exists(part.to_string())
            } else {
                return Err(format!("unable to parse requirement: {part:?}"));
            };
            requirements.push(req);
        }
        Ok(LabelSelector(requirements))
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }

    /// From a typed `LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(selector: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        if let Some(m) = selector["matchLabels"].as_object() {
            for (k, v) in m {
                reqs.push(Requirement::Equals(k.clone(), v.as_str().unwrap_or_default().into()));
            }
        }
        for e in selector["matchExpressions"].as_array().into_iter().flatten() {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> =
                e["values"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            reqs.push(match e["operator"].as_str() {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                _ => Requirement::NotExists(key),
            });
        }
        LabelSelector(reqs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!("invalid field selector: {part:?}"));
            };
            reqs.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let mut cur = object;
            for part in field.split('.') {
                cur = &cur[part];
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn split_word(part: &str, word: &str) -> Option<(String, String)> {
    let i = part.find(word)?;
    Some((part[..i].trim().to_string(), part[i + word.len()..].trim().to_string()))
}

fn parse_set(text: &str) -> Result<Vec<String>, String> {
    let inner =
        text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or_else(|| format!("expected (values): {text}"))?;
    Ok(inner.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_follow_the_api_grammar() {
        let labels = json!({"app": "web", "tier": "front"});
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "env notin (prod)",
            "tier",
            "!env",
            "app=web,tier=front",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&labels), "{s}");
        }
        let no = ["app=db", "app in (db)", "tier notin (front)", "env", "!app", "app=web,tier=back"];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&labels), "{s}");
        }
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Running"}});
        assert!(FieldSelector::parse("metadata.name=p,status.phase!=Pending").unwrap().matches(&pod));
        assert!(!FieldSelector::parse("metadata.namespace=other").unwrap().matches(&pod));
    }
}
