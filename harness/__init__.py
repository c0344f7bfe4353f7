"""greenperf's engine: measurement rules, drivers, results and reports.

Nothing in this package names a particular workload; workloads plug in through
``greenperf.workload`` and the ``greenperf.workloads`` entry-point group.
"""

__version__ = "0.1.0"
