"""The BERT-small reference workload (registered as entry point ``bert_small``)."""

from greenperf.suites.bert_small.workload import workload

__all__ = ["workload"]
