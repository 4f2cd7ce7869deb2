//! testkit: a stand-in for the Kubernetes API server, for hermetic end-to-end tests.

pub mod patch;
pub mod rbac;
