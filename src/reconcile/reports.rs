//! PolicyReports in the cluster (`reconcile --policy-reports`): one wgpolicyk8s.io/v1alpha2
//! PolicyReport `kube-devops` per namespace with DevOpsPolicies, holding the outcomes of every
//! policy there.
//!
//! Each evaluation of a policy replaces that policy's outcomes in memory; the namespace's
//! report is then rebuilt from the outcomes of the policies still in the watch cache and
//! server-side applied, unless it would say the same as the last one written (results'
//! timestamps aside): an unchanged cluster sees no writes. The report is owned by the
//! namespace's policies, so it is garbage-collected with the last of them. A new leader writes
//! each report once as its evaluations come in.
//!
//! A report that cannot be written is logged and tried again at the next evaluation, never a
//! failure of the evaluation (statuses and audit results matter more). Without the
//! PolicyReport CRD (404) that is said once; the bootstrap operator reports it on the install.

use super::{Evaluation, report_outcomes};
use crate::api::DevOpsPolicy;
use crate::api::policy_report::{self, Outcomes, PolicyReport};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The field manager of the reports.
const FIELD_MANAGER: &str = "kube-devops-operator";

/// One policy's part of its namespace's report.
struct PolicyOutcomes {
    owner: OwnerReference,
    outcomes: Outcomes,
}

/// The leader's PolicyReport writer.
pub struct PolicyReports {
    client: kube::Client,
    /// By namespace, then policy uid: the outcomes of each policy's last evaluation.
    outcomes: Mutex<HashMap<String, BTreeMap<String, PolicyOutcomes>>>,
    /// By namespace: the last report written (without timestamps).
    written: Mutex<HashMap<String, PolicyReport>>,
    /// Whether the missing CRD was already logged.
    missing_logged: AtomicBool,
}

impl PolicyReports {
    pub fn new(client: kube::Client) -> Self {
        PolicyReports {
            client,
            outcomes: Mutex::default(),
            written: Mutex::default(),
            missing_logged: AtomicBool::new(false),
        }
    }

    /// Forgets everything (a replica that stops leading).
    pub fn clear(&self) {
        self.outcomes.lock().unwrap().clear();
        self.written.lock().unwrap().clear();
        self.missing_logged.store(false, Ordering::Relaxed);
    }

    /// Records `evaluation` of `policy` and brings its namespace's report up to date; `live`
    /// says whether a policy (its owner reference: name and uid) is still in the watch cache.
    pub async fn update(&self, policy: &DevOpsPolicy, evaluation: &Evaluation, live: impl Fn(&OwnerReference) -> bool) {
        let Some(owner) = policy.controller_owner_ref(&()).map(|o| OwnerReference { controller: None, ..o }) else {
            return;
        };
        let namespace = policy.metadata.namespace.clone().unwrap_or_default();
        let report = {
            let mut all = self.outcomes.lock().unwrap();
            let policies = all.entry(namespace.clone()).or_default();
            policies.retain(|_, p| live(&p.owner));
            policies.insert(owner.uid.clone(), PolicyOutcomes { owner, outcomes: report_outcomes(policy, evaluation) });
            let owners = policies.values().map(|p| p.owner.clone()).collect();
            PolicyReport::build(&namespace, policies.values().map(|p| &p.outcomes)).owned_by(owners)
        };
        if self.written.lock().unwrap().get(&namespace) == Some(&report) {
            return;
        }
        match self.apply(&namespace, &report.clone().stamped(Timestamp::now())).await {
            Ok(()) => {
                self.written.lock().unwrap().insert(namespace, report);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                if !self.missing_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "cannot write PolicyReports: the cluster does not serve {} PolicyReport (install its \
                         CRD); trying again at each evaluation",
                        policy_report::API_VERSION
                    );
                }
            }
            Err(e) => tracing::warn!(%namespace, error = %e, "cannot write the PolicyReport"),
        }
    }

    async fn apply(&self, namespace: &str, report: &PolicyReport) -> Result<(), kube::Error> {
        let gvk = GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", policy_report::KIND);
        let resource = ApiResource::from_gvk_with_plural(&gvk, "policyreports");
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &resource);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(policy_report::REPORT_NAME, &params, &Patch::Apply(report)).await.map(|_| ())
    }
}
