//! The one fold over many subjects: every caller that scores a set of pods or workloads (the
//! offline audit, the watch controller, the reconcile operator) evaluates them here, so they
//! skip the same namespaces and score the same way.

use super::checks::Finding;
use super::evaluate::evaluate_replicated;
use super::facts::PodFacts;
use super::namespaces::is_system_namespace;
use super::rules::Rules;
use super::score::Tally;
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};

/// Tallies by namespace, and how many subjects were not evaluated for living in a system
/// namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    pub namespaces: BTreeMap<String, Tally>,
    pub skipped_system: u32,
}

impl Assessment {
    /// Every namespace's tally folded into one.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        self.namespaces.values().for_each(|t| total.merge(t));
        total
    }

    /// The tally of `namespace` (an empty one when nothing there was evaluated).
    pub fn namespace(&self, namespace: &str) -> Tally {
        self.namespaces.get(namespace).cloned().unwrap_or_default()
    }
}

/// Evaluates every item that `subject` gives a namespace and a subject for against `rules`
/// at `now`, except those in system namespaces; `each` sees every evaluated item with its
/// findings (borrowed for the call only). Live pods of one ReplicaSet, StatefulSet or
/// ReplicationController count as that workload's replicas.
pub fn assess<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    rules: &Rules,
    now: Timestamp,
    subject: impl Fn(&'a T) -> Option<(&'a str, &'a PodFacts)>,
    mut each: impl FnMut(&'a T, &str, &[Finding<'a>]),
) -> Assessment {
    let mut assessment = Assessment::default();
    let mut findings = Vec::new();
    let subjects = items.into_iter().filter_map(|item| subject(item).map(|(ns, facts)| (item, ns, facts)));
    // Counting replicas takes a first pass; only the checks that read them pay for it.
    let (subjects, replicas): (Box<dyn Iterator<Item = _>>, _) = match rules.reads_replicas() {
        true => {
            let subjects: Vec<_> = subjects.collect();
            let replicas = count_replicas(subjects.iter().map(|(_, ns, facts)| (*ns, *facts)));
            (Box::new(subjects.into_iter()), replicas)
        }
        false => (Box::new(subjects), HashMap::new()),
    };
    for (item, namespace, evaluated) in subjects {
        if is_system_namespace(namespace) {
            assessment.skipped_system += 1;
            continue;
        }
        let workload_replicas = evaluated
            .replicas
            .or_else(|| evaluated.replicated_by.and_then(|owner| replicas.get(&(namespace, owner)).copied()));
        evaluate_replicated(evaluated, workload_replicas, rules, now, &mut findings);
        match assessment.namespaces.get_mut(namespace) {
            Some(tally) => tally.add(&findings),
            None => {
                let mut tally = Tally::default();
                tally.add(&findings);
                assessment.namespaces.insert(namespace.to_string(), tally);
            }
        }
        each(item, namespace, &findings);
    }
    assessment
}

/// How many live pods each replicated workload (namespace, controller) runs.
fn count_replicas<'a>(pods: impl Iterator<Item = (&'a str, &'a PodFacts)>) -> HashMap<(&'a str, u64), u32> {
    let mut counts = HashMap::new();
    for (namespace, facts) in pods {
        if let Some(owner) = facts.replicated_by {
            *counts.entry((namespace, owner)).or_default() += 1;
        }
    }
    counts
}
