"""The ResNet reference workload (registered as entry point ``resnet``)."""

from greenperf.suites.resnet.workload import workload

__all__ = ["workload"]
