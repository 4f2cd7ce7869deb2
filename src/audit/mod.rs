//! Audits of manifests (offline) or of a cluster's pods: one report, rendered for people or
//! machines.

pub mod input;
pub mod render;
pub mod report;

pub use input::{InputError, Inputs, OtherObject, SourcedWorkload};
pub use report::{AuditReport, NamespaceReport, PolicySource, Violation, WorkloadReport};
