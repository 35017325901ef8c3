"""Prometheus metrics in the text exposition format, kept by hand: three metric families
do not justify a dependency, and each worker process reports its own counts."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable

from haima.index.plan_cache import PlanCacheStats

#: Latency histogram bucket bounds, in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counts and latencies by route; collection sizes are read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: defaultdict[tuple[str, str], list[int]] = defaultdict(
            lambda: [0] * (len(BUCKETS) + 1)
        )
        self._sums: defaultdict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            self._buckets[(method, route)][bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[(method, route)] += seconds

    def render(
        self, collection_sizes: Iterable[tuple[str, str, str, int]], plans: PlanCacheStats
    ) -> str:
        """The exposition text; `collection_sizes` yields (tenant, database, name, count),
        `plans` describes the filter-plan cache."""
        out = [
            "# HELP haima_requests_total HTTP requests handled, by route and status.",
            "# TYPE haima_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self._requests.items())
            histograms = sorted((k, list(v), self._sums[k]) for k, v in self._buckets.items())
        for (method, route, status), count in requests:
            labels = _labels(method=method, route=route, status=str(status))
            out.append(f"haima_requests_total{{{labels}}} {count}")
        out += [
            "# HELP haima_request_duration_seconds Time to answer a request, by route.",
            "# TYPE haima_request_duration_seconds histogram",
        ]
        for (method, route), counts, total in histograms:
            cumulative = 0
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                cumulative += count
                labels = _labels(method=method, route=route, le=bound)
                out.append(f"haima_request_duration_seconds_bucket{{{labels}}} {cumulative}")
            labels = _labels(method=method, route=route)
            out.append(f"haima_request_duration_seconds_sum{{{labels}}} {total:.6f}")
            out.append(f"haima_request_duration_seconds_count{{{labels}}} {cumulative}")
        out += [
            "# HELP haima_collection_records Records stored per collection.",
            "# TYPE haima_collection_records gauge",
        ]
        for tenant, database, name, count in collection_sizes:
            labels = _labels(tenant=tenant, database=database, collection=name)
            out.append(f"haima_collection_records{{{labels}}} {count}")
        for name, help_text, value in (
            (
                "haima_filter_plans",
                "Filter plans cached (one per collection and filter).",
                plans.plans,
            ),
            (
                "haima_filter_views",
                "Filtered views (graphs of one filter's records) built.",
                plans.views,
            ),
            ("haima_filter_views_building", "Filtered views being built.", plans.building),
            ("haima_filter_cache_bytes", "Memory held by filter plans and views.", plans.nbytes),
        ):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(out) + "\n"


def _labels(**values: str) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in values.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
