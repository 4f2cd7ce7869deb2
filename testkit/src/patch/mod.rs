//! Patch semantics of the API server: strategic merge patch and server-side apply.
//! (JSON patch and JSON merge patch come from the json-patch crate.)

pub mod apply;
pub mod strategic;

/// Where list-map keys come from: for built-in kinds the Go struct tags (`patchMergeKey`,
/// `listType=map` + `listMapKey`), for custom resources the CRD schema
/// (`x-kubernetes-list-type: map` + `x-kubernetes-list-map-keys`).
pub trait ListKeys {
    /// The merge keys of the list at `path` (field names from the object root, e.g.
    /// `["spec", "template", "spec", "containers"]`), or `None` when the list is atomic
    /// (replaced as a whole) or a set of scalars (see [`ListKeys::is_set`]).
    fn keys(&self, path: &[&str]) -> Option<Vec<String>>;
    /// Whether the list at `path` is a set of scalars merged by value (`finalizers`,
    /// `x-kubernetes-list-type: set`).
    fn is_set(&self, path: &[&str]) -> bool;
}
