//! Server-side apply (see the module docs in patch/mod.rs).
