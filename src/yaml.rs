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
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1_000_000;
    budget.max_nodes = 100_000_000;
    budget.max_events = 400_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_multiple_with_options(text, options)
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
