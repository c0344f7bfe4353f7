"""The installed import package is ``greenperf``; the source folders are not import names."""
import json
import subprocess
import sys


def test_greenperf_imports_from_outside_the_repository(tmp_path):
    code = ("import importlib.util as u, json, greenperf, greenperf.suites.mlp; "
            "from greenperf.workload import Workload; "
            "print(json.dumps([u.find_spec('harness') is None, u.find_spec('suites') is None, "
            "greenperf.suites.mlp.workload.name]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, True, "mlp"]


def test_the_entry_points_name_the_greenperf_package():
    from importlib.metadata import entry_points

    groups = {"greenperf.workloads": {"mlp", "resnet", "bert_small"},
              "greenperf.suites": {"quick", "standard"}}
    for group, names in groups.items():
        found = {ep.name: ep.value for ep in entry_points(group=group)}
        assert names <= set(found)
        assert all(found[n].startswith("greenperf.suites") for n in names)
    assert any(ep.value == "greenperf.pytest_plugin" for ep in entry_points(group="pytest11"))


def test_no_source_file_imports_the_folder_names():
    """From the repository root ``harness`` would still import (the working directory is on
    sys.path), which hides a stale name until a user installs the wheel; so look for them."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    stale = re.compile(r"""(\b(from|import)\s+(harness|suites)\b|["'](harness|suites)[.:])""")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("harness", "suites", "tests", "benchmarks")
        for path in (root / folder).rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if stale.search(line) and "stale =" not in line
    ]
    assert offenders == []
