//! The one fold over many subjects: every caller that scores a set of pods or workloads (the
//! offline audit, the watch controller, the reconcile operator) evaluates them here, so they
//! skip the same namespaces and score the same way.

use super::checks::Finding;
use super::evaluate::evaluate_into;
use super::facts::PodFacts;
use super::namespaces::is_system_namespace;
use super::rules::Rules;
use super::score::Tally;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

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
/// findings (borrowed for the call only).
pub fn assess<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    rules: &Rules,
    now: Timestamp,
    subject: impl Fn(&'a T) -> Option<(&'a str, &'a PodFacts)>,
    mut each: impl FnMut(&'a T, &str, &[Finding<'a>]),
) -> Assessment {
    let mut assessment = Assessment::default();
    let mut findings = Vec::new();
    for item in items {
        let Some((namespace, evaluated)) = subject(item) else { continue };
        if is_system_namespace(namespace) {
            assessment.skipped_system += 1;
            continue;
        }
        evaluate_into(evaluated, rules, now, &mut findings);
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
