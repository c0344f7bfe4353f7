"""The MLP reference workload (registered as entry point ``mlp``)."""

from greenperf.suites.mlp.workload import workload

__all__ = ["workload"]
