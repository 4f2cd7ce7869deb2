//! Reading DevOpsPolicies from files: every document of a multi-document YAML (or JSON)
//! stream, named `file#n` (`file#n items[i]` inside a `kind: List`), validated against the
//! CRD's schema and read into the typed policy, its namespace settled.

use super::{key, portable};
use crate::api::DevOpsPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde::Serialize;
use serde_json::Value;

/// A valid policy and the document it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    /// `file#n`.
    pub source: String,
    /// The portable policy (see [`portable`]), its namespace set.
    pub policy: DevOpsPolicy,
}

/// A document that is not a valid DevOpsPolicy, or a file that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentError {
    pub source: String,
    pub message: String,
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// Which namespace documents land in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespacing {
    /// For documents that name none (`-n`, else the kubeconfig's namespace, else `default`).
    pub default: String,
    /// Set by `-n`: every document must be in it (as kubectl insists).
    pub required: bool,
}

/// Everything read from the files: the policies and the documents that failed.
#[derive(Clone, Debug)]
pub struct Documents {
    pub policies: Vec<PolicyDocument>,
    pub errors: Vec<DocumentError>,
    crd: CustomResourceDefinition,
    namespacing: Namespacing,
}

impl Documents {
    pub fn new(namespacing: Namespacing) -> Documents {
        Documents { policies: Vec::new(), errors: Vec::new(), crd: DevOpsPolicy::crd(), namespacing }
    }

    /// Reads the documents of one stream named `name` (a file name, or `<stdin>`).
    pub fn add_text(&mut self, name: &str, text: &str) {
        let documents = crate::yaml::read_documents(text);
        let last = documents.len();
        for (i, document) in documents.into_iter().enumerate() {
            let source = format!("{name}#{}", i + 1);
            match document {
                Ok(value) => self.add_document(source, value),
                // A syntax error ends the stream: say so, since later documents go unmentioned.
                Err(e) if i + 1 == last => {
                    self.error(source, format!("not valid YAML: {e} (nothing after it could be read)"))
                }
                Err(e) => self.error(source, format!("not valid YAML: {e}")),
            }
        }
    }

    /// A file (or folder entry) that could not be read at all.
    pub fn add_unreadable(&mut self, name: &str, problem: &str) {
        self.error(name.to_string(), format!("cannot read: {problem}"));
    }

    fn add_document(&mut self, source: String, mut value: Value) {
        let is_list = value.get("kind").and_then(Value::as_str).is_some_and(|k| k == "List" || k.ends_with("List"));
        if is_list && let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
            for (i, item) in std::mem::take(items).into_iter().enumerate() {
                self.add_document(format!("{source} items[{i}]"), item);
            }
            return;
        }
        // A status is the server's (a `kubectl get -o yaml` copy has one): never applied.
        if let Some(object) = value.as_object_mut() {
            object.remove("status");
        }
        let problems = crate::api::schema::validate(&self.crd, &value);
        if !problems.is_empty() {
            return self.error(source, format!("invalid DevOpsPolicy: {}", problems.join("; ")));
        }
        let policy: DevOpsPolicy = match serde_json::from_value(value) {
            Ok(policy) => policy,
            Err(e) => return self.error(source, format!("invalid DevOpsPolicy: {e}")),
        };
        let mut policy = portable(&policy);
        let namespacing = &self.namespacing;
        match policy.metadata.namespace.as_deref() {
            None => policy.metadata.namespace = Some(namespacing.default.clone()),
            Some(ns) if namespacing.required && ns != namespacing.default => {
                let message = format!("the namespace {ns:?} does not match -n {:?}", namespacing.default);
                return self.error(source, message);
            }
            Some(_) => {}
        }
        if let Some(first) = self.policies.iter().find(|p| key(&p.policy) == key(&policy)) {
            let message = format!("DevOpsPolicy {} is also defined in {}", key(&policy), first.source);
            return self.error(source, message);
        }
        self.policies.push(PolicyDocument { source, policy });
    }

    fn error(&mut self, source: String, message: String) {
        self.errors.push(DocumentError { source, message });
    }

    /// The namespaces the policies are in, sorted, each once.
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> =
            self.policies.iter().filter_map(|p| p.policy.metadata.namespace.clone()).collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata:\n  name: strict\nspec:\n  forbidLatestTag: true\n";

    fn read(text: &str, namespace: &str, required: bool) -> Documents {
        let mut documents = Documents::new(Namespacing { default: namespace.into(), required });
        documents.add_text("p.yaml", text);
        documents
    }

    fn errors(documents: &Documents) -> Vec<String> {
        documents.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_document_is_named_and_validated() {
        let text = format!(
            "# policies\n---\n{POLICY}---\n{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n",
            POLICY.replace("strict", "loose").replace("forbidLatestTag", "forbidLatestTags")
        );
        let documents = read(&text, "shop", false);
        assert_eq!(documents.policies.len(), 1);
        assert_eq!(documents.policies[0].source, "p.yaml#1");
        assert_eq!(key(&documents.policies[0].policy), "shop/strict");
        assert_eq!(
            errors(&documents),
            [
                "p.yaml#2: invalid DevOpsPolicy: .spec.forbidLatestTags: unknown field (the API server would drop it)",
                "p.yaml#3: invalid DevOpsPolicy: .kind: expected DevOpsPolicy, found \"ConfigMap\"",
            ]
        );
    }

    #[test]
    fn broken_yaml_is_named_by_document_and_the_ones_before_it_are_read() {
        let documents = read(&format!("{POLICY}---\nspec: [unclosed\n---\n{POLICY}"), "shop", false);
        assert_eq!(documents.policies.len(), 1);
        let found = errors(&documents);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("p.yaml#2: not valid YAML"), "{found:?}");
    }

    #[test]
    fn namespaces_follow_the_document_then_the_default_and_n_must_agree() {
        let other = POLICY.replace("name: strict", "name: other\n  namespace: batch");
        let documents = read(&format!("{POLICY}---\n{other}"), "shop", false);
        assert_eq!(documents.namespaces(), ["batch", "shop"]);
        let documents = read(&format!("{POLICY}---\n{other}"), "shop", true);
        assert_eq!(errors(&documents), ["p.yaml#2: the namespace \"batch\" does not match -n \"shop\""]);
    }

    #[test]
    fn lists_are_expanded_status_is_ignored_and_duplicates_refused() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy", "metadata": {"name": "a", "namespace": "shop", "uid": "1"},
             "spec": {"maxRestartCount": 3}, "status": {"healthScore": 70}},
            {"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy", "metadata": {"name": "a", "namespace": "shop"}, "spec": {}}]}"#;
        let documents = read(text, "default", false);
        assert_eq!(documents.policies.len(), 1);
        assert_eq!(documents.policies[0].source, "p.yaml#1 items[0]");
        assert_eq!(documents.policies[0].policy.spec.max_restart_count, Some(3));
        assert_eq!(documents.policies[0].policy.metadata.uid, None);
        assert_eq!(errors(&documents), ["p.yaml#1 items[1]: DevOpsPolicy shop/a is also defined in p.yaml#1 items[0]"]);
    }
}
