//! [`render`]: a [`Page`] as one self-contained HTML document: inline CSS and script, no
//! fonts, images or requests (it opens from a CI artifact on a machine without network).
//! Every value from the input is escaped ([`escape`]) and goes into text or quoted attributes
//! only; the script reads the page's own `data-` attributes, never the data as code.
//!
//! Semantic tables with `scope`d headers and captions, `<details>` for a namespace's findings
//! (keyboard and screen-reader operable without script), sortable columns as buttons with
//! `aria-sort`, filters as labelled `<select>`s (also from the URL: `#severity=high&check=
//! latest_tag`), colours with at least 4.5:1 contrast, and one column on a phone.

use super::{Page, PolicyView};
use crate::api::checks::CheckId;
use crate::api::severity::Severity;
use crate::audit::report::NamespaceReport;
use crate::governance::Summary;
use std::fmt::Write;

/// `text` safe in HTML text and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The page as HTML.
pub fn render(page: &Page) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = escape(&page.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'; img-src data:\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    let report = &page.report;
    let _ = write!(
        out,
        "<header>\n<h1>{title}</h1>\n<p class=\"meta\">{} · policy {} · generated {}</p>\n</header>\n<main>\n",
        escape(&page.source),
        escape(&report.policy),
        escape(&page.generated.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()),
    );
    overview(&mut out, &report.summary, report.namespaces.len());
    filters(&mut out, page);
    namespaces(&mut out, &report.namespaces);
    findings(&mut out, &report.namespaces);
    if !page.policies.is_empty() {
        policies(&mut out, &page.policies);
    }
    let _ = write!(out, "</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

fn class_of(classification: &str) -> String {
    format!("class-{}", classification.to_ascii_lowercase())
}

fn overview(out: &mut String, summary: &Summary, namespaces: usize) {
    let class = summary.classification.as_str();
    let counts = &summary.by_severity;
    let _ = write!(
        out,
        "<section aria-labelledby=\"overview\" class=\"overview\">\n<h2 id=\"overview\">Cluster</h2>\n\
         <p class=\"score\"><span id=\"cluster-score\" class=\"big {}\">{}</span> <span class=\"badge {}\" \
         id=\"cluster-class\">{class}</span></p>\n<dl class=\"counts\">\
         <div><dt>Namespaces</dt><dd>{namespaces}</dd></div><div><dt>Pods</dt><dd>{}</dd></div>\
         <div><dt>Violations</dt><dd>{}</dd></div><div><dt>Critical</dt><dd>{}</dd></div>\
         <div><dt>High</dt><dd>{}</dd></div><div><dt>Medium</dt><dd>{}</dd></div><div><dt>Low</dt><dd>{}</dd></div></dl>\n\
         </section>\n",
        class_of(class),
        summary.score,
        class_of(class),
        summary.subjects,
        summary.violations,
        counts.critical,
        counts.high,
        counts.medium,
        counts.low,
    );
}

fn filters(out: &mut String, page: &Page) {
    let mut checks: Vec<CheckId> = page
        .report
        .namespaces
        .iter()
        .flat_map(|n| n.workloads.iter().flat_map(|w| w.violations.iter().map(|v| v.check)))
        .collect();
    checks.sort();
    checks.dedup();
    out.push_str(
        "<section aria-label=\"Filters\" class=\"filters\">\n<label>Severity <select id=\"severity-filter\">\
         <option value=\"\">all</option>",
    );
    for severity in Severity::ALL {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", severity.as_str());
    }
    out.push_str("</select></label>\n<label>Check <select id=\"check-filter\"><option value=\"\">all</option>");
    for check in checks {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", check.as_str());
    }
    out.push_str("</select></label>\n<p id=\"shown\" role=\"status\"></p>\n</section>\n");
}

/// A sortable column header (`numeric` sorts as numbers).
fn header(label: &str, numeric: bool) -> String {
    format!(
        "<th scope=\"col\" aria-sort=\"none\"><button type=\"button\" class=\"sort\" data-numeric=\"{numeric}\">{label}</button></th>"
    )
}

fn namespaces(out: &mut String, namespaces: &[NamespaceReport]) {
    out.push_str(
        "<section aria-labelledby=\"namespaces\">\n<h2 id=\"namespaces\">Namespaces</h2>\n<div class=\"scroll\">\n",
    );
    out.push_str("<table class=\"sortable\" id=\"namespace-table\">\n<caption>Score, classification and violations by severity; a name opens its findings</caption>\n<thead><tr>");
    for (label, numeric) in [
        ("Namespace", false),
        ("Score", true),
        ("Classification", false),
        ("Pods", true),
        ("Violations", true),
        ("Critical", true),
        ("High", true),
        ("Medium", true),
        ("Low", true),
    ] {
        out.push_str(&header(label, numeric));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, ns) in namespaces.iter().enumerate() {
        let s = &ns.summary;
        let class = s.classification.as_str();
        let _ = writeln!(
            out,
            "<tr data-namespace=\"{}\"><th scope=\"row\"><a href=\"#ns-{i}\" class=\"open\">{}</a></th><td>{}</td>\
             <td><span class=\"badge {}\">{class}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&ns.namespace),
            escape(&ns.namespace),
            s.score,
            class_of(class),
            s.subjects,
            s.violations,
            s.by_severity.critical,
            s.by_severity.high,
            s.by_severity.medium,
            s.by_severity.low,
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn findings(out: &mut String, namespaces: &[NamespaceReport]) {
    out.push_str("<section aria-labelledby=\"findings\">\n<h2 id=\"findings\">Findings by namespace</h2>\n");
    for (i, ns) in namespaces.iter().enumerate() {
        let name = escape(&ns.namespace);
        let _ = writeln!(
            out,
            "<details id=\"ns-{i}\" class=\"namespace\"><summary><span class=\"ns-name\">{name}</span> \
             <span class=\"badge {}\">{} {}</span> <span class=\"muted\">{} workloads, {} violations</span></summary>",
            class_of(ns.summary.classification.as_str()),
            ns.summary.score,
            ns.summary.classification.as_str(),
            ns.workloads.len(),
            ns.summary.violations,
        );
        if ns.summary.violations == 0 {
            out.push_str("<p>No findings.</p>\n</details>\n");
            continue;
        }
        let _ = write!(
            out,
            "<div class=\"scroll\"><table class=\"findings\">\n<caption>Findings in {name}</caption>\n<thead><tr>\
             <th scope=\"col\">Workload</th><th scope=\"col\">Container</th><th scope=\"col\">Check</th>\
             <th scope=\"col\">Severity</th><th scope=\"col\">Message</th><th scope=\"col\">How to fix</th></tr></thead>\n<tbody>\n"
        );
        for workload in &ns.workloads {
            for v in &workload.violations {
                let _ = writeln!(
                    out,
                    "<tr class=\"finding\" data-severity=\"{sev}\" data-check=\"{check}\"><td>{}/{}</td><td>{}</td>\
                     <td><code>{check}</code></td><td><span class=\"sev sev-{sev}\">{sev}</span></td><td>{}</td><td>{}</td></tr>",
                    escape(&workload.kind),
                    escape(&workload.name),
                    escape(v.container.as_deref().unwrap_or("")),
                    escape(&v.message),
                    escape(v.check.fix()),
                    sev = v.severity.as_str(),
                    check = v.check.as_str(),
                );
            }
        }
        out.push_str("</tbody>\n</table></div>\n</details>\n");
    }
    out.push_str("</section>\n");
}

/// A score trend as an inline SVG line (0-100 bottom to top), with its values as its name.
fn trend(history: &[u32]) -> String {
    if history.is_empty() {
        return "<span class=\"muted\">no results yet</span>".into();
    }
    let (width, height) = (120.0, 28.0);
    let step = if history.len() > 1 { width / (history.len() - 1) as f64 } else { 0.0 };
    let points: Vec<String> = history
        .iter()
        .enumerate()
        .map(|(i, score)| format!("{:.1},{:.1}", i as f64 * step, height - f64::from(*score) / 100.0 * height))
        .collect();
    let values: Vec<String> = history.iter().map(u32::to_string).collect();
    format!(
        "<svg class=\"trend\" width=\"{width}\" height=\"{height}\" viewBox=\"-2 -2 {} {}\" role=\"img\" \
         aria-label=\"scores: {}\"><polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" points=\"{}\"/></svg>",
        width + 4.0,
        height + 4.0,
        values.join(", "),
        points.join(" ")
    )
}

fn policies(out: &mut String, policies: &[PolicyView]) {
    out.push_str(
        "<section aria-labelledby=\"policies\">\n<h2 id=\"policies\">DevOpsPolicies</h2>\n<div class=\"scroll\">\n",
    );
    out.push_str("<table class=\"sortable\" id=\"policy-table\">\n<caption>Each policy's mode, last evaluation and recent audit results</caption>\n<thead><tr>");
    for (label, numeric) in [
        ("Namespace", false),
        ("Policy", false),
        ("Mode", false),
        ("Score", true),
        ("Classification", false),
        ("Violations", true),
    ] {
        out.push_str(&header(label, numeric));
    }
    out.push_str("<th scope=\"col\">Status</th><th scope=\"col\">Trend</th></tr></thead>\n<tbody>\n");
    for p in policies {
        let dash = || "–".to_string();
        let _ = writeln!(
            out,
            "<tr data-policy=\"{}/{}\"><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.namespace),
            escape(&p.name),
            escape(&p.namespace),
            escape(&p.name),
            escape(&p.mode),
            p.score.map(|s| s.to_string()).unwrap_or_else(dash),
            p.classification
                .as_deref()
                .map(|c| format!("<span class=\"badge {}\">{}</span>", escape(&class_of(c)), escape(c)))
                .unwrap_or_else(dash),
            p.violations.map(|s| s.to_string()).unwrap_or_else(dash),
            escape(p.message.as_deref().unwrap_or("not evaluated yet")),
            trend(&p.history),
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

#[cfg(test)]
mod tests;
