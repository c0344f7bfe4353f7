"""One module per ``greenperf`` sub-command, each with ``register(subparsers)``."""
