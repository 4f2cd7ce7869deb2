//! YAML output of Kubernetes objects (what `kubectl apply -f -` reads).

use serde::Serialize;

/// One object as a YAML document.
pub fn to_yaml<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(value)?)
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
