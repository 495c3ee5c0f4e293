"""The capacity simulation (`bench/capacity.py`) runs, agrees with docs/scaling.md, and follows its inputs."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

from pdfgen_pipeline_tests.conftest import REPO

SCRIPT = REPO / "bench" / "capacity.py"


def _module():
    spec = importlib.util.spec_from_file_location("capacity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_docs_show_what_the_simulation_prints():
    printed = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    docs = (REPO / "docs" / "scaling.md").read_text("utf-8")
    block = re.search(r"<!-- capacity:begin -->\n(.*)\n<!-- capacity:end -->", docs, re.S)
    assert block, "docs/scaling.md lost its capacity block"
    assert block.group(1).strip() == printed.strip(), "docs/scaling.md is stale: rerun bench/capacity.py"
    for pods in ("| 1 |", "| 4 |", "| 20 |"):
        assert pods in printed


def test_plan_follows_its_measured_inputs():
    capacity = _module()
    base = capacity.plan(capacity.MEASURED, ouvrages=60, pages=400, pods=[1, 4, 20], pod_start_s=30)
    assert base.pods[1] > base.pods[4] > base.pods[20] > 0
    assert base.pods[1] == 60 * base.run_s and base.pods[20] == 3 * base.run_s
    # the fitted line passes near the measured points
    for pages, seconds in capacity.MEASURED["scaling"]:
        assert abs(base.render_fixed_s + base.render_s_per_page * pages - seconds) < 0.15 * seconds
    slower = dict(capacity.MEASURED, listing_ms_per_1000_objects=2 * capacity.MEASURED["listing_ms_per_1000_objects"])
    halved = capacity.plan(slower, ouvrages=60, pages=400, pods=[1], pod_start_s=30).sensor_max_objects
    assert abs(halved * 2 - base.sensor_max_objects) <= 2
    longer = capacity.plan(capacity.MEASURED, ouvrages=60, pages=800, pods=[1], pod_start_s=30)
    assert longer.run_s > base.run_s
