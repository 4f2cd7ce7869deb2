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
    /// Up to this much more delay, spread evenly over the matching requests (`latency=100ms..
    /// 300ms`: between 100 and 300 ms), as a busy server's answers vary.
    pub latency_spread: Duration,
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

    /// A fault written as `testkit --fault` takes it: space-separated `key=value` pairs,
    /// `verb=update resource=leases status=500 every=3 latency=200ms times=10 agent=kube-devops`
    /// (all optional; with a `status` and no `every`, every matching request fails; without a
    /// `status`, requests are only delayed).
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let mut fault = Fault::default();
        let mut every = None;
        for pair in spec.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let number = |v: &str| v.parse::<u32>().map_err(|e| format!("{key}={v}: {e}"));
            match key {
                "verb" => fault.verb = Some(value.to_string()),
                "resource" => fault.resource = Some(value.to_string()),
                "agent" => fault.user_agent = Some(value.to_string()),
                "status" => {
                    fault.status = value
                        .parse()
                        .ok()
                        .filter(|s| (400..600).contains(s))
                        .ok_or_else(|| format!("status={value}: an HTTP error status (400-599) is expected"))?
                }
                "every" => every = Some(number(value)?.max(1)),
                "times" => fault.remaining = Some(number(value)?),
                "latency" => (fault.latency, fault.latency_spread) = parse_latency(value)?,
                other => {
                    return Err(format!(
                        "unknown key {other:?} (verb, resource, agent, status, every, latency, times)"
                    ));
                }
            }
        }
        fault.fail_every = match (fault.status, every) {
            (0, Some(_)) => return Err("every=N needs a status".into()),
            (0, None) => 0,
            (_, every) => every.unwrap_or(1),
        };
        Ok(fault)
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
        // A fixed sequence that covers the spread evenly (Weyl's), repeatable for a test.
        let fraction = (f64::from(f.seen) * 0.618_033_988_749_895).fract();
        outcome.delay += f.latency + f.latency_spread.mul_f64(fraction);
        if f.fail_every > 0 && f.seen % f.fail_every == 0 && outcome.fail_with.is_none() {
            outcome.fail_with = Some(f.status);
        }
    }
    outcome
}

/// A latency, `200ms`, or a range, `100ms..300ms`: (least, spread above it).
pub fn parse_latency(text: &str) -> Result<(Duration, Duration), String> {
    match text.split_once("..") {
        None => Ok((parse_duration(text)?, Duration::ZERO)),
        Some((low, high)) => {
            let (low, high) = (parse_duration(low)?, parse_duration(high)?);
            let spread = high.checked_sub(low).ok_or_else(|| format!("{text:?}: the range must not decrease"))?;
            Ok((low, spread))
        }
    }
}

/// `200ms`, `10s`, `1.5s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.find(|c: char| c.is_ascii_alphabetic()).map_or((text, ""), |i| text.split_at(i));
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 200ms, 10s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn a_latency_range_spreads_the_delays_over_it() {
        let mut faults = [Fault::parse("latency=100ms..300ms").unwrap()];
        let delays: Vec<Duration> = (0..200).map(|_| apply_faults(&mut faults, "get", "pods", "x").delay).collect();
        assert!(delays.iter().all(|d| (Duration::from_millis(100)..=Duration::from_millis(300)).contains(d)));
        let below = delays.iter().filter(|d| **d < Duration::from_millis(200)).count();
        assert!((80..=120).contains(&below), "half below the middle: {below}");
    }

    #[test]
    fn faults_are_read_as_the_command_line_writes_them() {
        let f = Fault::parse("verb=update resource=leases status=500 every=3").unwrap();
        assert_eq!(
            (f.verb.as_deref(), f.resource.as_deref(), f.status, f.fail_every),
            (Some("update"), Some("leases"), 500, 3)
        );
        assert_eq!(f.latency, Duration::ZERO);
        let f = Fault::parse("latency=250ms agent=kube-devops times=4").unwrap();
        assert_eq!(
            (f.fail_every, f.latency, f.remaining, f.user_agent.as_deref()),
            (0, Duration::from_millis(250), Some(4), Some("kube-devops"))
        );
        assert_eq!(Fault::parse("status=429").unwrap().fail_every, 1, "a status alone fails every request");
        for bad in ["status=200", "every=2", "verb", "colour=red", "latency=5h"] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
        let f = Fault::parse("latency=100ms..300ms").unwrap();
        assert_eq!((f.latency, f.latency_spread), (Duration::from_millis(100), Duration::from_millis(200)));
        assert!(Fault::parse("latency=300ms..100ms").is_err());
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }
}
