"""Helpers for the durability, torture, memory, multi-process and state-machine tests
(child processes, reference checks, workloads). Child scripts run as
`python -m tests.helpers.<name>` from the repository root."""
