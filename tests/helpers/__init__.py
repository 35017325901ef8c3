"""Helpers for the durability, multi-process and state-machine tests (child processes
and reference checks). Child scripts run as `python -m tests.helpers.<name>` from the
repository root."""
