"""Benchmarks are run by hand (`pytest benchmarks/ -s`), never in CI's unit tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "plugins"))
