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
        let documents: Vec<Value> = match serde_saphyr::from_multiple(text) {
            Ok(docs) => docs,
            Err(e) => return self.error(name, format!("not valid YAML: {e}")),
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
