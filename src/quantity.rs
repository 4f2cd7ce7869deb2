//! Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `2G`, `1e3`) as numbers, to compare
//! a request with a limit.

/// The value of `text` in base units (cores, bytes), or `None` when it is not a quantity.
pub fn value(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        // A trailing `E` is exa; `1E3` (an exponent) has digits after it and parses below.
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((text, 1.0));
    number.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0).map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::value;

    #[test]
    fn quantities_read_as_the_api_server_reads_them() {
        assert_eq!(value("500m"), Some(0.5));
        assert_eq!(value("2"), Some(2.0));
        assert_eq!(value("1.5"), Some(1.5));
        assert_eq!(value("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(value("1G"), Some(1e9));
        assert_eq!(value("1e3"), Some(1000.0));
        assert_eq!(value("1E"), Some(1e18));
        assert!(value("1Gi") > value("1000Mi"));
        assert_eq!(value("lots"), None);
        assert_eq!(value("12Qi"), None);
        assert_eq!(value("2Ei"), Some(2.0 * 1024f64.powi(6)));
        assert_eq!(value("-1"), None);
    }
}
