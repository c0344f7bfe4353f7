"""Map the source folders onto the ``greenperf`` import package.

``harness/`` becomes ``greenperf`` and ``suites/`` becomes ``greenperf.suites``, so users and
plugins write ``from greenperf.workload import Workload`` while the repository keeps the engine
and the workloads in separate top-level folders. Packages are found, not listed, so a new
workload folder under ``suites/`` needs no edit here. Everything else is in pyproject.toml.
"""
from setuptools import find_packages, setup

FOLDERS = {"greenperf": "harness", "greenperf.suites": "suites"}

packages = [
    f"{name}.{sub}" if sub else name
    for name, folder in FOLDERS.items()
    for sub in ["", *find_packages(folder)]
]
setup(packages=packages, package_dir=FOLDERS)
