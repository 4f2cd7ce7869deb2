//! Rule matching: whether a policy rule grants a request (verb, API group, resource, name, URL).

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::RequestAttributes;

pub(super) fn list(values: &Option<Vec<String>>) -> &[String] {
    values.as_deref().unwrap_or_default()
}

pub(super) fn has(set: &[String], value: &str) -> bool {
    set.iter().any(|s| s == value)
}

/// Whether `rule` grants the request (`RuleAllows`).
pub fn rule_allows(attrs: &RequestAttributes, rule: &PolicyRule) -> bool {
    let verb_matches = has(&rule.verbs, "*") || has(&rule.verbs, &attrs.verb);
    if !verb_matches {
        return false;
    }
    if let Some(path) = &attrs.non_resource_path {
        return list(&rule.non_resource_urls).iter().any(|url| non_resource_url_covers(url, path));
    }
    let groups = list(&rule.api_groups);
    let group_matches = has(groups, "*") || has(groups, &attrs.api_group);
    let combined = attrs.combined_resource();
    let resource_matches = list(&rule.resources).iter().any(|resource| {
        resource == "*"
            || *resource == *combined
            || (!attrs.subresource.is_empty()
                && resource.strip_prefix("*/").is_some_and(|sub| sub == attrs.subresource))
    });
    let names = list(&rule.resource_names);
    let name_matches = names.is_empty() || has(names, &attrs.name);
    group_matches && resource_matches && name_matches
}

/// `rule_url` covers `path` when equal, or when it ends in `*` and `path` starts with the rest.
pub(super) fn non_resource_url_covers(rule_url: &str, path: &str) -> bool {
    rule_url == path || rule_url.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}
