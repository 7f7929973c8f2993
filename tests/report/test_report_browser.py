"""The report opened in headless Chromium: charts drawn, no script errors, nothing fetched."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib import image

from matchcore.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)

# Records console errors and page errors from the start, then, once the charts have drawn,
# writes the drawn bar counts, the errors and a filter check of the exception table into the DOM.
CHECKER = """<script>
window.__mcErrors = [];
(function () {
  var original = console.error;
  console.error = function () {
    window.__mcErrors.push(Array.prototype.map.call(arguments, String).join(" "));
    original.apply(console, arguments);
  };
  window.addEventListener("error", function (e) { window.__mcErrors.push("error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) {
    window.__mcErrors.push("rejection: " + e.reason);
  });
  function report() {
    var charts = Array.prototype.map.call(document.querySelectorAll(".mc-chart"), function (el) {
      var bars = el.querySelectorAll("svg g.mark-rect path");
      var drawn = Array.prototype.filter.call(bars, function (p) {
        return (p.getAttribute("d") || "").length > 0;
      });
      return {id: el.id, bars: drawn.length};
    });
    var text = document.getElementById("mc-f-text");
    text.value = "__QUERY__";
    text.dispatchEvent(new Event("input"));
    var out = document.createElement("pre");
    out.id = "mc-check";
    out.textContent = JSON.stringify({
      charts: charts, errors: window.__mcErrors,
      filtered: document.querySelectorAll("#mc-exc-table tbody tr").length
    });
    document.body.appendChild(out);
  }
  window.addEventListener("load", function () {
    window.matchcoreChartsReady.then(report, function (err) {
      window.__mcErrors.push("charts: " + err); report();
    });
  });
})();
</script>"""

# No name resolves: a page that needed the network could not draw.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND"


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    command = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
               "--hide-scrollbars", OFFLINE, *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report_file(generated_result, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    path = tmp_path_factory.mktemp("browser") / "report.html"
    write_report(generated_result, path, title="Generated run")
    return path


def test_report_has_no_network_loads(report_file: Path) -> None:
    text = report_file.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", text, re.I)
    assert not re.search(r"<link[^>]*\shref=[\"']?(https?:)?//", text, re.I)
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", text, re.I)
    assert text.count("<script") == text.count("</script>")


@pytest.fixture(scope="module")
def opened(generated_result, report_file: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001, ANN201
    """One headless Chromium run over the report with the checker injected: (DOM, screenshot)."""
    query = generated_result.exceptions["order_no"][0]
    page = tmp_path_factory.mktemp("opened") / "checked.html"
    text = report_file.read_text(encoding="utf-8")
    page.write_text(text.replace("<head>", "<head>" + CHECKER.replace("__QUERY__", query), 1),
                    encoding="utf-8")  # fmt: skip
    shot = page.with_suffix(".png")
    done = _chromium("--window-size=1300,2400", "--virtual-time-budget=10000",
                     f"--screenshot={shot}", "--dump-dom", page.as_uri())  # fmt: skip
    return done, shot, query


def test_charts_draw_without_errors(generated_result, opened) -> None:  # noqa: ANN001
    done, _, query = opened
    exceptions = generated_result.exceptions
    assert 0 < exceptions.height <= 20_000  # every row is embedded
    # Rows the table's search keeps: any cell containing the text.
    expected_rows = exceptions.filter(
        pl.any_horizontal(pl.col(pl.String).str.contains(query, literal=True))
    ).height
    found = re.search(r'<pre id="mc-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"checker did not report; stderr: {done.stderr[-2000:]}"
    check = json.loads(html.unescape(found.group(1)))
    assert check["errors"] == []
    # verdicts, rules, amounts, four party roles, limit usage, arrival gaps
    assert len(check["charts"]) == 9
    assert all(chart["bars"] > 0 for chart in check["charts"]), check["charts"]
    assert check["filtered"] == min(expected_rows, 50)  # one page of the matching rows


def test_screenshot_is_not_blank(opened) -> None:  # noqa: ANN001
    _, shot, _ = opened
    assert shot.is_file()
    pixels = image.imread(shot)
    assert pixels.shape[0] == 2400 and pixels.shape[1] == 1300
    # Many distinct colours: header, bars of several colours, text.
    rgb = (pixels[..., :3] * 255).astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert len(colours) > 50
