"use strict";
// Sorting: a column header's button sorts its table's rows (numbers as numbers).
document.querySelectorAll("table.sortable button.sort").forEach(function (button) {
  button.addEventListener("click", function () {
    var th = button.closest("th"), table = th.closest("table"), body = table.tBodies[0];
    var column = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach(function (h) { if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = button.dataset.numeric === "true";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].textContent.trim(), y = b.cells[column].textContent.trim();
      var order = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
// Filters: findings of the chosen severity and check; namespaces without any are closed.
var severity = document.getElementById("severity-filter"), check = document.getElementById("check-filter");
function applyFilters() {
  var shown = 0, total = 0;
  document.querySelectorAll("tr.finding").forEach(function (row) {
    var keep = (!severity.value || row.dataset.severity === severity.value) && (!check.value || row.dataset.check === check.value);
    row.classList.toggle("hidden", !keep);
    total += 1; if (keep) shown += 1;
  });
  var filtering = severity.value || check.value;
  document.querySelectorAll("details.namespace").forEach(function (details) {
    var visible = details.querySelectorAll("tr.finding:not(.hidden)").length;
    if (filtering) details.open = visible > 0;
  });
  document.getElementById("shown").textContent = shown + " of " + total + " findings shown";
  var hash = [];
  if (severity.value) hash.push("severity=" + encodeURIComponent(severity.value));
  if (check.value) hash.push("check=" + encodeURIComponent(check.value));
  if (hash.length) history.replaceState(null, "", "#" + hash.join("&"));
  else if (/severity=|check=/.test(location.hash)) history.replaceState(null, "", location.pathname + location.search);
}
// The URL's filters (#severity=high&check=latest_tag), for links and bookmarks.
location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
  var kv = pair.split("="), value = decodeURIComponent(kv[1] || "");
  var select = kv[0] === "severity" ? severity : kv[0] === "check" ? check : null;
  if (select && Array.prototype.some.call(select.options, function (o) { return o.value === value; })) select.value = value;
});
severity.addEventListener("change", applyFilters);
check.addEventListener("change", applyFilters);
// A namespace's name opens its findings.
document.querySelectorAll("a.open").forEach(function (link) {
  link.addEventListener("click", function () {
    var target = document.querySelector(link.getAttribute("href"));
    if (target) target.open = true;
  });
});
applyFilters();
