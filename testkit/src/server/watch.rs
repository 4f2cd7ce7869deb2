//! Watch streams: replay from a resourceVersion (410 Gone when too old), live events,
//! bookmarks, timeouts, and ending on request (fault injection).

use super::State;
use super::handlers::{ResourcePath, error_response};
use super::table;
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::Event;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How often bookmarks are sent to clients that allow them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);

struct Filter {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
}

impl Filter {
    fn matches(&self, e: &Event) -> bool {
        e.resource == self.rt.key() && self.matches_object(&e.object)
    }

    /// Whether a stored object is one this watch sends (selectors see it as the watch's API
    /// version serves it).
    fn matches_object(&self, object: &Value) -> bool {
        let object = &*crate::conversion::served_view(&self.rt, object);
        let meta = &object["metadata"];
        self.namespace.as_ref().is_none_or(|ns| meta["namespace"].as_str().unwrap_or_default() == ns)
            && self.name.as_ref().is_none_or(|n| meta["name"].as_str() == Some(n))
            && self.labels.matches(&meta["labels"])
            && self.fields.matches(object)
    }

    fn line(&self, kind: &str, object: &Value) -> Bytes {
        let object = crate::conversion::from_storage(&self.rt, object);
        let rv = object["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
        let object = if self.table { table::table(&self.rt, &[object], &rv) } else { object };
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

struct Stream {
    filter: Filter,
    pending: VecDeque<Bytes>,
    rx: Option<broadcast::Receiver<Arc<Event>>>,
    epoch: tokio::sync::watch::Receiver<u64>,
    deadline: tokio::time::Instant,
    bookmarks: bool,
    last_rv: u64,
}

pub fn serve(
    state: web::Data<State>,
    rt: ResourceType,
    p: ResourcePath,
    query: &HashMap<String, String>,
    table: bool,
) -> HttpResponse {
    let labels = match LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default()) {
        Ok(l) => l,
        Err(e) => return error_response(&ApiError::bad_request(e)),
    };
    let fields = match FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default()) {
        Ok(f) => f,
        Err(e) => return error_response(&ApiError::bad_request(e)),
    };
    let filter = Filter {
        namespace: (rt.namespaced && !p.namespace.is_empty()).then(|| p.namespace.clone()),
        name: (!p.name.is_empty()).then(|| p.name.clone()),
        rt,
        labels,
        fields,
        table,
    };
    // A streaming list (`sendInitialEvents=true`) starts with the current state whatever the
    // version, and marks its end with a bookmark annotated `k8s.io/initial-events-end`.
    let initial_events = query.get("sendInitialEvents").is_some_and(|s| s == "true");
    let requested: Option<u64> = query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0" && !initial_events)
        .and_then(|v| v.parse().ok());
    let timeout = query.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800);
    let mut pending = VecDeque::new();
    let (rx, last_rv) = {
        let cluster = state.cluster.lock().unwrap();
        let store = &cluster.store;
        match requested {
            None => {
                // No version: the current state as ADDED events, then changes.
                let now = store.resource_version();
                for object in store.list(&filter.rt.key(), filter.namespace.as_deref()) {
                    if filter.matches_object(object) {
                        pending.push_back(filter.line("ADDED", object));
                    }
                }
                if initial_events {
                    let mut object = json!({"kind": filter.rt.kind, "apiVersion": filter.rt.api_version(),
                        "metadata": {"resourceVersion": now.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                    if filter.table {
                        object = table::table(&filter.rt, &[], &now.to_string());
                    }
                    pending.push_back(Bytes::from(format!("{}\n", json!({"type": "BOOKMARK", "object": object}))));
                }
                let (_, rx) = store.watch_from(now).expect("current version is watchable");
                (Some(rx), now)
            }
            Some(rv) => match store.watch_from(rv) {
                Some((replay, rx)) => {
                    for e in replay.iter().filter(|e| filter.matches(e)) {
                        pending.push_back(filter.line(e.kind.as_str(), &e.object));
                    }
                    (Some(rx), store.resource_version())
                }
                None => {
                    let status =
                        ApiError::gone(format!("too old resource version: {rv} ({})", store.oldest_watchable())).body();
                    pending.push_back(Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": status}))));
                    (None, rv)
                }
            },
        }
    };
    let mut epoch = state.watch_epoch.subscribe();
    epoch.mark_unchanged();
    let stream = Stream {
        filter,
        pending,
        rx,
        epoch,
        deadline: tokio::time::Instant::now() + Duration::from_secs(timeout),
        bookmarks: query.get("allowWatchBookmarks").is_some_and(|b| b == "true"),
        last_rv,
    };
    let body = futures_util::stream::unfold(stream, next);
    HttpResponse::Ok().content_type("application/json").streaming(body)
}

async fn next(mut s: Stream) -> Option<(Result<Bytes, std::io::Error>, Stream)> {
    loop {
        if let Some(line) = s.pending.pop_front() {
            return Some((Ok(line), s));
        }
        let rx = s.rx.as_mut()?;
        let bookmark = tokio::time::sleep(BOOKMARK_INTERVAL);
        tokio::select! {
            received = rx.recv() => match received {
                Ok(e) => {
                    if e.rv > s.last_rv {
                        s.last_rv = e.rv;
                        if s.filter.matches(&e) {
                            s.pending.push_back(s.filter.line(e.kind.as_str(), &e.object));
                        }
                    }
                }
                // Lagging behind or closed: end the stream; the client resumes or relists.
                Err(_) => return None,
            },
            _ = bookmark, if s.bookmarks => {
                // The last version this stream has seen: resuming from it misses nothing.
                let object = json!({"kind": s.filter.rt.kind, "apiVersion": s.filter.rt.api_version(), "metadata": {"resourceVersion": s.last_rv.to_string()}});
                let line = format!("{}\n", json!({"type": "BOOKMARK", "object": object}));
                return Some((Ok(Bytes::from(line)), s));
            }
            _ = tokio::time::sleep_until(s.deadline) => return None,
            _ = s.epoch.changed() => return None,
        }
    }
}
