//! What tests inspect and inject: the request log and faults.

use serde::Serialize;
use std::time::Duration;

/// One request as the server saw it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub verb: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub user: String,
    pub user_agent: String,
    pub field_manager: Option<String>,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub code: u16,
    /// When the request arrived, in milliseconds since the Unix epoch (a wall clock, so tests
    /// can compare it with the times they take themselves).
    pub received_ms: u64,
}

impl RequestRecord {
    /// Whether the request could change state.
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
    }
}

/// A fault to inject into matching requests.
#[derive(Clone, Debug, Default)]
pub struct Fault {
    /// Verb to match (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`); None = any.
    pub verb: Option<String>,
    /// Resource to match (`pods`, `leases`, `devopspolicies`); None = any.
    pub resource: Option<String>,
    /// A part of the User-Agent header to match (one client among several of the same user);
    /// None = any.
    pub user_agent: Option<String>,
    /// Fail every Nth matching request (1 = all); 0 = never fail, only delay.
    pub fail_every: u32,
    /// HTTP status of the injected error (500, 503, 429, ...).
    pub status: u16,
    /// Delay before the request is served.
    pub latency: Duration,
    /// How many more requests this fault applies to (None = unlimited).
    pub remaining: Option<u32>,
    pub(crate) seen: u32,
}

impl Fault {
    pub fn error(verb: Option<&str>, resource: Option<&str>, status: u16) -> Fault {
        Fault {
            verb: verb.map(String::from),
            resource: resource.map(String::from),
            fail_every: 1,
            status,
            ..Fault::default()
        }
    }

    pub fn latency(verb: Option<&str>, resource: Option<&str>, latency: Duration) -> Fault {
        Fault { verb: verb.map(String::from), resource: resource.map(String::from), latency, ..Fault::default() }
    }

    /// Only requests whose User-Agent contains `part`.
    pub fn from_user_agent(mut self, part: &str) -> Fault {
        self.user_agent = Some(part.to_string());
        self
    }

    pub fn every(mut self, n: u32) -> Fault {
        self.fail_every = n;
        self
    }

    pub fn times(mut self, n: u32) -> Fault {
        self.remaining = Some(n);
        self
    }

    pub(crate) fn matches(&self, verb: &str, resource: &str, user_agent: &str) -> bool {
        self.remaining != Some(0)
            && self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
            && self.user_agent.as_deref().is_none_or(|part| user_agent.contains(part))
    }
}

/// What a fault decided for one request.
#[derive(Debug, Default)]
pub(crate) struct FaultOutcome {
    pub delay: Duration,
    pub fail_with: Option<u16>,
}

pub(crate) fn apply_faults(faults: &mut [Fault], verb: &str, resource: &str, user_agent: &str) -> FaultOutcome {
    let mut outcome = FaultOutcome::default();
    for f in faults.iter_mut().filter(|f| f.matches(verb, resource, user_agent)) {
        f.seen += 1;
        if let Some(r) = &mut f.remaining {
            *r -= 1;
        }
        outcome.delay += f.latency;
        if f.fail_every > 0 && f.seen % f.fail_every == 0 && outcome.fail_with.is_none() {
            outcome.fail_with = Some(f.status);
        }
    }
    outcome
}
