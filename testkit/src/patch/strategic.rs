//! Strategic merge patch (see the module docs in patch/mod.rs).
