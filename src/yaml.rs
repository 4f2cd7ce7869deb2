//! YAML output of Kubernetes objects (what `kubectl apply -f -` reads).

use serde::Serialize;

/// One object as a YAML document.
pub fn to_yaml<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(value)?)
}

/// Every document of a YAML (or JSON) stream. The parser's default budget (1,024 documents,
/// 250,000 nodes) is sized for configuration files; a `kubectl get -A -o yaml` dump of a real
/// cluster is far larger, so the limits here are raised while the depth and alias limits that
/// guard against malicious input stay.
pub fn from_documents(text: &str) -> Result<Vec<serde_json::Value>, serde_saphyr::Error> {
    serde_saphyr::from_multiple_with_options(text, options())
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1_000_000;
    budget.max_nodes = 100_000_000;
    budget.max_events = 400_000_000;
    budget.max_reader_input_bytes = None;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The documents of a stream one by one, with the parser's budget of [`from_documents`]:
/// empty documents are skipped (so the n-th item is the n-th document a reader counts), a
/// document that does not parse is an `Err` in its place. A syntax error ends the stream
/// (the parser cannot know where the next document starts), so it is the last item.
pub fn read_documents(text: &str) -> Vec<Result<serde_json::Value, String>> {
    let mut reader = text.as_bytes();
    serde_saphyr::read_with_options::<_, serde_json::Value>(&mut reader, options())
        .map(|document| document.map_err(|e| e.to_string()))
        .collect()
}

/// Writes to stdout; a closed pipe (`... | head`) ends the process quietly instead of panicking.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(2);
    }
}

/// Several objects as one multi-document stream, each document starting with `---`.
pub fn to_yaml_stream<T: Serialize>(values: &[T]) -> anyhow::Result<String> {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        out.push_str(&to_yaml(value)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_one_by_one_and_a_broken_one_is_named_by_its_place() {
        let text = "# header\n---\na: 1\n---\n---\nb: [2\n---\nc: 3\n";
        let docs = read_documents(text);
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(docs[0], Ok(serde_json::json!({"a": 1})));
        assert!(docs[1].is_err(), "{docs:?}");
        let fine = read_documents("a: 1\n---\nb: 2\n");
        assert_eq!(fine, [Ok(serde_json::json!({"a": 1})), Ok(serde_json::json!({"b": 2}))]);
    }
}
