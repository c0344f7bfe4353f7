"""greenperf's reference workloads and the suites built from them.

Each workload lives in its own folder and registers itself through the
``greenperf.workloads`` entry-point group in pyproject.toml; the suites below
register through ``greenperf.suites``.
"""

from harness.workload import Suite

QUICK = Suite(name="quick", scale="tiny", runs=1, workloads=("mlp", "resnet", "bert_small"),
              description="one seed of each workload at tiny scale: a smoke run on any laptop")
STANDARD = Suite(name="standard", scale="standard", runs=5, workloads=("mlp", "resnet", "bert_small"),
                 description="five seeds of each workload at standard scale, for one GPU")
