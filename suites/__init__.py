"""greenperf's reference workloads and the suites built from them.

Each workload lives in its own folder and registers itself through the
``greenperf.workloads`` entry-point group in pyproject.toml; the suites below
register through ``greenperf.suites``.
"""

from greenperf.workload import Suite

REFERENCE_WORKLOADS = ("mlp", "resnet", "bert_small")

QUICK = Suite(name="quick", scale="tiny", runs=1, workloads=REFERENCE_WORKLOADS,
              description="one seed of each workload at tiny scale, then LoadGen Offline and "
                          "SingleStream: a smoke run on any laptop",
              inference_scenarios=("offline", "singlestream"))
STANDARD = Suite(name="standard", scale="standard", runs=5, workloads=REFERENCE_WORKLOADS,
                 description="five seeds of each workload at standard scale, for one GPU",
                 inference_scenarios=("offline", "singlestream", "multistream", "server"))
