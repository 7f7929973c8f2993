"""The report page's fixed parts: CSS, the exception-table script and the chart loader.

Kept apart from the assembly code so the page's look can change without touching the logic.
Everything here is inlined into the page; it loads nothing from the network.
"""

from __future__ import annotations

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif;
       color: var(--fg); margin: 0; background: #fff; }
header { background: #0d2b45; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: #c9d6e3; font-size: 13px; }
main { padding: 8px 28px 40px; max-width: 1280px; }
section { margin: 22px 0; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 12px 0 4px; color: var(--muted); }
.note { color: var(--muted); font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 130px;
        background: var(--bg); }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card.pass .v { color: #2e7d32; } .card.review .v { color: #b26a00; }
.card.reject .v { color: #c62828; }
.grid { display: flex; flex-wrap: wrap; gap: 18px 36px; align-items: flex-start; }
.mc-chart { min-height: 60px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0; }
.filters select, .filters input { font: inherit; padding: 3px 6px; }
.pager button { font: inherit; padding: 2px 10px; }
#mc-exc-table td { max-width: 260px; overflow-wrap: anywhere; }
#mc-exc-table td:nth-child(-n+4) { white-space: nowrap; }
.sev-reject { color: #c62828; } .sev-review { color: #b26a00; } .sev-warn { color: #1565c0; }
"""

#: Draws every chart spec of the page and exposes a promise that settles when all are drawn.
CHARTS_JS = """
(function () {
  var specs = JSON.parse(document.getElementById("mc-chart-specs").textContent);
  var drawn = Object.keys(specs).map(function (id) {
    return vegaEmbed("#" + id, specs[id], {mode: "vega-lite", actions: false, renderer: "svg"});
  });
  window.matchcoreChartsReady = Promise.all(drawn);
})();
"""

#: The paged, filterable exception table over the embedded sample.
TABLE_JS = """
(function () {
  var data = JSON.parse(document.getElementById("mc-exc-data").textContent);
  var cols = data.columns, rows = data.rows, pageSize = 50, page = 0, shown = rows;
  var idx = {}; cols.forEach(function (c, i) { idx[c] = i; });
  var ruleSel = document.getElementById("mc-f-rule"), sevSel = document.getElementById("mc-f-sev");
  var text = document.getElementById("mc-f-text");
  var body = document.querySelector("#mc-exc-table tbody");
  var info = document.getElementById("mc-exc-info");
  function options(sel, col) {
    var seen = {}; rows.forEach(function (r) { seen[r[idx[col]]] = 1; });
    Object.keys(seen).sort().forEach(function (v) {
      var o = document.createElement("option"); o.value = v; o.textContent = v; sel.appendChild(o);
    });
  }
  function filter() {
    var rule = ruleSel.value, sev = sevSel.value, q = text.value.trim().toLowerCase();
    shown = rows.filter(function (r) {
      if (rule && r[idx.rule] !== rule) return false;
      if (sev && r[idx.severity] !== sev) return false;
      if (!q) return true;
      return r.some(function (v) { return v !== null && String(v).toLowerCase().indexOf(q) >= 0; });
    });
    page = 0; draw();
  }
  function draw() {
    var pages = Math.max(1, Math.ceil(shown.length / pageSize));
    page = Math.min(Math.max(page, 0), pages - 1);
    var start = page * pageSize, slice = shown.slice(start, start + pageSize);
    body.textContent = "";
    slice.forEach(function (r) {
      var tr = document.createElement("tr");
      r.forEach(function (v, i) {
        var td = document.createElement("td"); td.textContent = v === null ? "" : v;
        if (cols[i] === "severity") td.className = "sev-" + v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    info.textContent = !shown.length ? "no matching rows" :
      "rows " + (start + 1) + "-" + (start + slice.length) + " of " + shown.length +
      " matching (page " + (page + 1) + " of " + pages + ")";
  }
  options(ruleSel, "rule"); options(sevSel, "severity");
  ruleSel.addEventListener("change", filter); sevSel.addEventListener("change", filter);
  text.addEventListener("input", filter);
  document.getElementById("mc-prev").addEventListener("click", function () { page -= 1; draw(); });
  document.getElementById("mc-next").addEventListener("click", function () { page += 1; draw(); });
  draw();
})();
"""
