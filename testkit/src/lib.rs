//! testkit: a stand-in for the Kubernetes API server, for hermetic end-to-end tests.

pub mod admission;
pub mod authz;
pub mod cluster;
pub mod controllers;
pub mod conversion;
pub mod harness;
pub mod kubelet;
pub mod observe;
pub mod patch;
pub mod podsecurity;
pub mod protobuf;
pub mod rbac;
pub mod registry;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod tls;
pub mod validation;
