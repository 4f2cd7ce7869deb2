use super::*;
use crate::api::bundles::{Bundle, BundleName};
use crate::audit::input::Inputs;
use crate::audit::report::{AuditReport, PolicySource};
use crate::governance::Rules;
use k8s_openapi::jiff::Timestamp;

/// A page of the workloads in `yaml`, scored by the baseline bundle.
fn page(yaml: &str, policies: Vec<PolicyView>) -> Page {
    let mut inputs = Inputs::default();
    inputs.add_text("test.yaml", yaml);
    let rules = Rules::from_spec(&Bundle::of(BundleName::Baseline).spec);
    let report =
        AuditReport::build(PolicySource::bundle(BundleName::Baseline), &rules, &inputs.workloads, Timestamp::now());
    Page {
        title: "kube-devops report".into(),
        source: "test.yaml".into(),
        generated: Timestamp::now(),
        report,
        policies,
    }
}

const SHOP: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n\
spec:\n  containers: [{name: web, image: 'nginx:latest'}]\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: payments}\n\
spec:\n  containers: [{name: api, image: 'api:1.2.3', resources: {limits: {cpu: 100m, memory: 64Mi}, requests: {cpu: 50m, memory: 32Mi}}}]\n";

#[test]
fn the_page_shows_the_cluster_every_namespace_and_each_finding_with_its_fix() {
    let html = render(&page(SHOP, Vec::new()));
    let report = page(SHOP, Vec::new()).report;
    assert!(html.contains(&format!(
        "id=\"cluster-score\" class=\"big class-{}\">{}<",
        report.summary.classification.as_str().to_lowercase(),
        report.summary.score
    )));
    for namespace in ["shop", "payments"] {
        assert!(html.contains(&format!("<tr data-namespace=\"{namespace}\">")), "{namespace}");
    }
    let latest = CheckId::LatestTag;
    assert!(html.contains(&format!("data-check=\"{}\"", latest.as_str())));
    assert!(html.contains(&escape(latest.fix())), "the fix is shown");
    assert!(html.contains("<option value=\"latest_tag\">latest_tag</option>"), "the check filter offers it");
}

#[test]
fn the_page_is_self_contained() {
    let html = render(&page(SHOP, Vec::new()));
    for reference in ["http://", "https://", "src=", "@import", "url(", "<link"] {
        assert!(!html.contains(reference), "{reference} in the page");
    }
    assert_eq!(html.matches("<script>").count(), 1, "only the page's own script");
}

#[test]
fn hostile_names_and_messages_stay_text() {
    let hostile = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: \"x\\\"><img src=x onerror=alert(1)>\"\n  namespace: \"<script>alert(2)</script>\"\n\
spec:\n  containers: [{name: \"c'><svg onload=alert(3)>\", image: \"nginx:latest\"}]\n";
    let policy = PolicyView {
        namespace: "</td><script>alert(4)</script>".into(),
        name: "p\" onmouseover=\"alert(5)".into(),
        mode: "audit".into(),
        score: Some(50),
        classification: Some("Degraded\" onclick=\"alert(6)".into()),
        violations: Some(1),
        message: Some("</textarea><script>alert(7)</script>".into()),
        history: vec![40, 50],
    };
    let html = render(&page(hostile, vec![policy]));
    for injected in ["<img", "<svg onload", "<script>alert", "\" onmouseover=", "\" onclick="] {
        assert!(!html.contains(injected), "{injected} got through");
    }
    assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"), "the namespace is shown as text");
    assert!(html.contains("c&#39;&gt;&lt;svg onload=alert(3)&gt;"), "the container is shown as text");
    assert_eq!(html.matches("<script>").count(), 1);
}

#[test]
fn a_policy_shows_its_mode_status_and_score_trend() {
    let policy = PolicyView {
        namespace: "shop".into(),
        name: "strict".into(),
        mode: "enforce".into(),
        score: Some(93),
        classification: Some("Healthy".into()),
        violations: Some(2),
        message: Some("2 violations across 1 pods".into()),
        history: vec![70, 85, 93],
    };
    let html = render(&page(SHOP, vec![policy]));
    assert!(html.contains("<tr data-policy=\"shop/strict\">"));
    assert!(html.contains("aria-label=\"scores: 70, 85, 93\""));
    assert!(html.contains("<td>enforce</td>"));
    assert!(!render(&page(SHOP, Vec::new())).contains("id=\"policies\""), "offline: no policy section");
}

/// WCAG's contrast ratio of a `#rrggbb` colour against white.
fn contrast_with_white(hex: &str) -> f64 {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
        if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    1.05 / (luminance + 0.05)
}

#[test]
fn every_colour_of_text_and_badges_reads_at_4_5_to_1_on_white() {
    // Text colours on the white page, and the white text of the badges on them.
    let css = include_str!("../page.css");
    let root = &css[..css.find('}').unwrap()];
    let colours: Vec<(&str, &str)> = root
        .split(';')
        .filter_map(|d| d.trim().trim_start_matches(":root {").trim().split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
        .filter(|(name, _)| *name != "--bg" && *name != "--line" && *name != "--head")
        .collect();
    assert!(colours.len() >= 7, "{colours:?}");
    for (name, value) in colours {
        let ratio = contrast_with_white(value);
        assert!(ratio >= 4.5, "{name} {value}: {ratio:.2}:1");
    }
}
