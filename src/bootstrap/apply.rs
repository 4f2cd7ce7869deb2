//! How the bootstrap operator writes: every object by forced server-side apply under its own
//! field manager (it owns what it installs), deletions in the background, 404 on delete meaning
//! done. The operator and the test of its RBAC write through this one type.

use super::ObjectRef;
use crate::manifests::Object;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;

/// Applies and deletes the objects of an installation.
#[derive(Clone)]
pub struct Applier {
    client: kube::Client,
    field_manager: &'static str,
}

impl Applier {
    pub fn new(client: kube::Client, field_manager: &'static str) -> Applier {
        Applier { client, field_manager }
    }

    fn api(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Server-side applies `object`, forcing: fields another manager set are taken over.
    pub async fn apply(&self, object: &Object) -> Result<DynamicObject, kube::Error> {
        let api = self.api(&object.api_version(), &object.kind(), object.namespace());
        let params = PatchParams::apply(self.field_manager).force();
        api.patch(object.name(), &params, &Patch::Apply(object)).await
    }

    /// Deletes `gone`; one that is not there (or whose kind is not served) is already done.
    /// Looked up first: the parts switched off by default (the dashboard) are obsolete on
    /// every reconcile, and an idle operator must not send writes for them.
    pub async fn delete(&self, gone: &ObjectRef) -> Result<(), kube::Error> {
        let api = self.api(&gone.api_version, &gone.kind, gone.namespace.as_deref());
        match api.get_opt(&gone.name).await {
            Ok(None) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
            Ok(Some(_)) => {}
        }
        match api.delete(&gone.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}
