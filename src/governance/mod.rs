//! The governance engine: pure functions from Kubernetes objects to findings and scores.
//! Nothing here does I/O; every caller (CLI, watch, operator, admission, audit) goes through
//! [`evaluate`] with [`Rules`] compiled from a DevOpsPolicy spec.

pub mod assess;
pub mod checks;
pub mod evaluate;
pub mod facts;
pub mod image;
pub mod namespaces;
pub mod rules;
pub mod score;

pub use crate::api::{CheckId, Classification, Severity};
pub use assess::{Assessment, assess};
pub use checks::{Detail, Finding};
pub use evaluate::{evaluate, evaluate_into};
pub use facts::PodFacts;
pub use namespaces::is_system_namespace;
pub use rules::Rules;
pub use score::{Summary, Tally};
