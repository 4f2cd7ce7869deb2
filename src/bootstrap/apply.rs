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

    /// Server-side applies `object`, forcing: fields another manager set are taken over. An
    /// error the API server may not give again (5xx, 429, a lost connection) is retried twice
    /// after a short pause, so a busy server costs one object a moment, not the whole
    /// reconcile its 30 s retry (applying is idempotent).
    pub async fn apply(&self, object: &Object) -> Result<DynamicObject, kube::Error> {
        let api = self.api(&object.api_version(), &object.kind(), object.namespace());
        let params = PatchParams::apply(self.field_manager).force();
        let patch = Patch::Apply(object);
        retrying(|| api.patch(object.name(), &params, &patch)).await
    }

    /// Deletes `gone`; one that is not there (or whose kind is not served) is already done.
    /// Looked up first: the parts switched off by default (the dashboard) are obsolete on
    /// every reconcile, and an idle operator must not send writes for them.
    pub async fn delete(&self, gone: &ObjectRef) -> Result<(), kube::Error> {
        let api = self.api(&gone.api_version, &gone.kind, gone.namespace.as_deref());
        match retrying(|| api.get_opt(&gone.name)).await {
            Ok(None) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
            Ok(Some(_)) => {}
        }
        let params = DeleteParams::background();
        match retrying(|| api.delete(&gone.name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Pauses before the second and third attempt.
const RETRY_PAUSES: [std::time::Duration; 2] =
    [std::time::Duration::from_millis(200), std::time::Duration::from_millis(800)];

/// Whether the API server may answer differently the next time: it was busy or unavailable
/// (429, 5xx), or the connection failed; not a refusal (4xx) of what was sent.
pub fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(e) => e.code == 429 || e.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// `call` until it succeeds, fails for good, or has failed transiently three times.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    for pause in RETRY_PAUSES {
        match call().await {
            Err(e) if transient(&e) => tokio::time::sleep(pause).await,
            done => return done,
        }
    }
    call().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status { code, ..Default::default() }))
    }

    #[test]
    fn busy_and_unavailable_servers_are_retried_refusals_are_not() {
        for code in [429, 500, 503, 504] {
            assert!(transient(&api_error(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 422] {
            assert!(!transient(&api_error(code)), "{code}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_error_is_tried_three_times_a_refusal_once() {
        let calls = std::cell::Cell::new(0);
        let always = |code| {
            let calls = &calls;
            move || {
                calls.set(calls.get() + 1);
                std::future::ready(Err::<(), _>(api_error(code)))
            }
        };
        assert!(retrying(always(503)).await.is_err());
        assert_eq!(calls.replace(0), 3);
        assert!(retrying(always(403)).await.is_err());
        assert_eq!(calls.replace(0), 1);
        let mut failures = 1;
        let once = || {
            calls.set(calls.get() + 1);
            let result = if failures > 0 { Err(api_error(500)) } else { Ok(7) };
            failures -= 1;
            std::future::ready(result)
        };
        assert_eq!(retrying(once).await.unwrap(), 7);
        assert_eq!(calls.get(), 2);
    }
}
