"""Prometheus metrics in the text exposition format, kept by hand: three metric families
do not justify a dependency, and each worker process reports its own counts."""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from haima.index.plan_cache import PlanCacheStats

#: Latency histogram bucket bounds, in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class RequestTotals:
    """Requests answered by time.monotonic() `at`, summed over routes: their count and
    latency histogram (one count per bucket of `BUCKETS`, then the overflow)."""

    at: float
    count: int
    buckets: tuple[int, ...]

    def since(self, earlier: RequestTotals) -> RequestWindow:
        """The requests answered between `earlier` and this snapshot."""
        return RequestWindow(
            self.at - earlier.at,
            self.count - earlier.count,
            tuple(a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)),
        )


@dataclass(frozen=True)
class RequestWindow:
    """The requests answered during `seconds`, as `RequestTotals` counts them."""

    seconds: float
    count: int
    buckets: tuple[int, ...]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the latency in seconds, interpolated within its bucket as
        Prometheus' histogram_quantile does (None without requests; the last bound when
        it falls in the overflow bucket)."""
        if self.count <= 0:
            return None
        rank = q * self.count
        seen = 0
        for i, count in enumerate(self.buckets):
            if count and seen + count >= rank:
                if i == len(BUCKETS):
                    return BUCKETS[-1]
                lower = BUCKETS[i - 1] if i else 0.0
                return lower + (BUCKETS[i] - lower) * (rank - seen) / count
            seen += count
        return BUCKETS[-1]


class Metrics:
    """Request counts and latencies by route; collection sizes are read at scrape time."""

    def __init__(self) -> None:
        #: When this process started counting (time.monotonic and time.time).
        self.started = time.monotonic()
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: defaultdict[tuple[str, str], list[int]] = defaultdict(
            lambda: [0] * (len(BUCKETS) + 1)
        )
        self._sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._last_request = self.started
        #: Set once the first request has been answered: the server is up.
        self.answered = threading.Event()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._last_request = time.monotonic()
            self._requests[(method, route, status)] += 1
            self._buckets[(method, route)][bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[(method, route)] += seconds
        if not self.answered.is_set():  # set() takes a lock: once, not per request
            self.answered.set()

    def quiet_for(self) -> float:
        """Seconds since the last request ended (or since start, before any)."""
        with self._lock:
            return time.monotonic() - self._last_request

    def totals(self, exclude_prefix: str | None = None) -> RequestTotals:
        """Every request so far, except those whose route starts with `exclude_prefix`."""
        merged = [0] * (len(BUCKETS) + 1)
        with self._lock:
            now = time.monotonic()
            for (_, route), counts in self._buckets.items():
                if exclude_prefix is not None and route.startswith(exclude_prefix):
                    continue
                for i, count in enumerate(counts):
                    merged[i] += count
        return RequestTotals(now, sum(merged), tuple(merged))

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
