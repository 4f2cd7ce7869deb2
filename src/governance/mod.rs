//! The governance engine: pure functions from Kubernetes objects to findings and scores.
//! Nothing here does I/O; every caller (CLI, watch, operator, admission, audit) goes through
//! [`evaluate`] with [`Rules`] compiled from a DevOpsPolicy spec.

pub mod bundles;
pub mod checks;
pub mod evaluate;
pub mod image;
pub mod namespaces;
pub mod rules;
pub mod score;
pub mod severity;

pub use checks::{CheckId, Detail, Finding};
pub use evaluate::{Subject, evaluate, evaluate_into};
pub use namespaces::is_system_namespace;
pub use rules::Rules;
pub use score::{Summary, Tally};
pub use severity::{Classification, Severity};
