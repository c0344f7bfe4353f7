"""Building blocks the reference workloads share (not part of the harness)."""
