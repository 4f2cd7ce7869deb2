//! RBAC authorization with the real semantics of the Kubernetes RBAC authorizer.
