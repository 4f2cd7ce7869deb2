//! Reading manifests for an offline audit: files, folders and stdin, multi-document YAML or JSON.

use crate::workload::{Classified, Workload};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A workload and where it was read from (`file#document`).
#[derive(Clone, Debug, PartialEq)]
pub struct SourcedWorkload {
    pub source: String,
    pub workload: Workload,
}

impl SourcedWorkload {
    /// The workloads of a cluster's pods, each sourced as `pod/<namespace>/<name>` (what
    /// `analyze` and the live dashboard score).
    pub fn from_pods(pods: Vec<k8s_openapi::api::core::v1::Pod>) -> Vec<SourcedWorkload> {
        pods.into_iter()
            .filter_map(Workload::from_pod)
            .map(|workload| SourcedWorkload {
                source: format!("pod/{}/{}", workload.namespace_or_default(), workload.name),
                workload,
            })
            .collect()
    }

    /// The workload's namespace and what is evaluated of it (for [`crate::governance::assess`]).
    pub fn subject(&self) -> Option<(&str, &crate::governance::PodFacts)> {
        Some((self.workload.namespace_or_default(), &self.workload.facts))
    }
}

/// A document that is a valid object but runs no pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtherObject {
    pub source: String,
    pub api_version: String,
    pub kind: String,
}

/// Input that could not be read or understood, with the file and document it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputError {
    pub source: String,
    pub message: String,
}

/// Everything read from the given paths.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub workloads: Vec<SourcedWorkload>,
    pub others: Vec<OtherObject>,
    pub errors: Vec<InputError>,
}

/// The name stdin goes by, as a path argument and in messages.
pub const STDIN: &str = "-";

impl Inputs {
    /// Reads every path (`-` is stdin, folders are walked for `.yaml`, `.yml` and `.json`).
    pub fn read(paths: &[PathBuf], stdin: &mut dyn Read) -> Inputs {
        let mut inputs = Inputs::default();
        for path in paths {
            if path.as_os_str() == STDIN {
                let mut text = String::new();
                match stdin.read_to_string(&mut text) {
                    Ok(_) => inputs.add_text("<stdin>", &text),
                    Err(e) => inputs.error("<stdin>", format!("cannot read: {e}")),
                }
            } else if path.is_dir() {
                let mut files = Vec::new();
                if let Err(e) = manifest_files(path, &mut files) {
                    inputs.error(&path.display().to_string(), format!("cannot read folder: {e}"));
                }
                files.sort();
                for file in files {
                    inputs.add_file(&file);
                }
            } else {
                inputs.add_file(path);
            }
        }
        inputs
    }

    fn add_file(&mut self, path: &Path) {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => self.add_text(&name, &text),
            Err(e) => self.error(&name, format!("cannot read: {e}")),
        }
    }

    /// Adds the documents of one YAML (or JSON) stream named `name`.
    pub fn add_text(&mut self, name: &str, text: &str) {
        let documents: Vec<Value> = match crate::yaml::from_documents(text) {
            Ok(docs) => docs,
            // One broken document must not cost the others: read them one by one to audit the
            // valid ones and name the broken one.
            Err(_) => return self.add_documents_one_by_one(name, text),
        };
        let mut number = 0;
        for doc in documents {
            if doc.is_null() {
                continue;
            }
            number += 1;
            self.add_document(format!("{name}#{number}"), &doc);
        }
    }

    /// Splits a stream at its `---` document markers and parses each document on its own.
    fn add_documents_one_by_one(&mut self, name: &str, text: &str) {
        let mut number = 0;
        for chunk in split_documents(text) {
            match crate::yaml::from_documents(&chunk) {
                Ok(docs) => {
                    for doc in docs.into_iter().filter(|d| !d.is_null()) {
                        number += 1;
                        self.add_document(format!("{name}#{number}"), &doc);
                    }
                }
                Err(e) => {
                    number += 1;
                    self.error(&format!("{name}#{number}"), format!("not valid YAML: {e}"));
                }
            }
        }
    }

    fn add_document(&mut self, source: String, doc: &Value) {
        // `kind: List` (what `kubectl get -o yaml` prints) holds its objects in `items`.
        if doc.get("kind").and_then(Value::as_str).is_some_and(|k| k == "List" || k.ends_with("List"))
            && let Some(items) = doc.get("items").and_then(Value::as_array)
        {
            for (i, item) in items.iter().enumerate() {
                self.add_document(format!("{source} items[{i}]"), item);
            }
            return;
        }
        match Workload::classify(doc) {
            Ok(Classified::Workload(workload)) => self.workloads.push(SourcedWorkload { source, workload: *workload }),
            Ok(Classified::Other { api_version, kind }) => self.others.push(OtherObject { source, api_version, kind }),
            Err(e) => self.error(&source, e.to_string()),
        }
    }

    fn error(&mut self, source: &str, message: String) {
        self.errors.push(InputError { source: source.to_string(), message });
    }
}

/// The documents of a stream, split at lines that are a `---` marker (with optional trailing
/// content such as comments).
fn split_documents(text: &str) -> Vec<String> {
    let mut chunks = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            chunks.push(String::new());
        }
        let chunk = chunks.last_mut().expect("never empty");
        chunk.push_str(line);
        chunk.push('\n');
    }
    chunks.retain(|c| c.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---"));
    chunks
}

fn manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            manifest_files(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: 'nginx:1.27'}]\n";

    fn read_text(text: &str) -> Inputs {
        let mut inputs = Inputs::default();
        inputs.add_text("in.yaml", text);
        inputs
    }

    #[test]
    fn multi_document_streams_are_numbered_and_empty_documents_skipped() {
        let text =
            format!("# comment\n---\n{DEPLOYMENT}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\n---\n");
        let inputs = read_text(&text);
        assert_eq!(inputs.errors, []);
        assert_eq!(inputs.workloads.len(), 1);
        assert_eq!(inputs.workloads[0].source, "in.yaml#1");
        assert_eq!(
            inputs.others,
            [OtherObject { source: "in.yaml#2".into(), api_version: "v1".into(), kind: "Service".into() }]
        );
    }

    #[test]
    fn lists_are_expanded() {
        let text =
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- 42\n";
        let inputs = read_text(text);
        assert_eq!(inputs.others.len(), 1);
        assert_eq!(
            inputs.errors,
            [InputError {
                source: "in.yaml#1 items[1]".into(),
                message: "not a Kubernetes object: expected a mapping, found a number".into()
            }]
        );
    }

    #[test]
    fn invalid_yaml_names_the_document_and_the_valid_ones_are_still_read() {
        let text = format!("{DEPLOYMENT}---\napiVersion: v1\nkind: [unclosed\n---\n{DEPLOYMENT}");
        let inputs = read_text(&text);
        assert_eq!(inputs.errors.len(), 1);
        assert_eq!(inputs.errors[0].source, "in.yaml#2");
        assert!(inputs.errors[0].message.starts_with("not valid YAML"), "{}", inputs.errors[0].message);
        let sources: Vec<&str> = inputs.workloads.iter().map(|w| w.source.as_str()).collect();
        assert_eq!(sources, ["in.yaml#1", "in.yaml#3"]);
    }

    #[test]
    fn large_streams_are_read_whole() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n  containers: [{name: c, image: 'x:1'}]\n";
        let text = vec![pod; 3000].join("---\n");
        let inputs = read_text(&text);
        assert_eq!(inputs.errors, []);
        assert_eq!(inputs.workloads.len(), 3000);
    }

    #[test]
    fn json_documents_are_read_too() {
        let inputs = read_text(
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}"#,
        );
        assert_eq!(inputs.workloads.len(), 1);
    }

    #[test]
    fn folders_are_walked_in_order_and_missing_paths_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), DEPLOYMENT).unwrap();
        std::fs::write(dir.path().join("sub/a.yml"), DEPLOYMENT).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let missing = dir.path().join("missing.yaml");
        let inputs = Inputs::read(&[dir.path().to_path_buf(), missing.clone()], &mut std::io::empty());
        let sources: Vec<_> =
            inputs.workloads.iter().map(|w| w.source.rsplit('/').next().unwrap().to_string()).collect();
        assert_eq!(sources, ["b.yaml#1", "a.yml#1"]);
        assert_eq!(inputs.errors.len(), 1);
        assert!(inputs.errors[0].source.ends_with("missing.yaml"));
        assert!(inputs.errors[0].message.starts_with("cannot read"));
    }

    #[test]
    fn stdin_is_read_for_dash() {
        let inputs = Inputs::read(&[PathBuf::from("-")], &mut DEPLOYMENT.as_bytes());
        assert_eq!(inputs.workloads[0].source, "<stdin>#1");
    }
}
