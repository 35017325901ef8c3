"""What the torture tests share: how many rounds to run, the plans' batch sizes, and the
tally they print at the end."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tests.helpers.batches import Op
from tests.helpers.crash_check import Verified

#: Batch sizes of the torture plans, from one record to a few thousand.
SIZES = [1, 2, 5, 20, 80, 300, 1000, 3000]


def rounds(default: int, variable: str = "HAIMA_TORTURE_ROUNDS") -> int:
    """Kill-and-check rounds: the environment variable (`make torture` sets it), else the
    default run's handful."""
    return int(os.environ.get(variable, default))


@dataclass
class Tally:
    rounds: int = 0
    kills: int = 0
    idle: int = 0  # writer rounds killed before a first acknowledgement (start-up, open)
    acknowledged: int = 0  # write calls acknowledged (batches)
    in_flight_kept: int = 0  # kills after which the unacknowledged call was in the store
    batches_verified: int = 0  # live batches compared whole, summed over the checks
    records_verified: int = 0

    def writer(self, ops: list[Op], start: int, acked: int, step: int) -> None:
        """One writer's part of a round: it ran ops[start:acked] acknowledged, and the
        store was found at `step`."""
        self.acknowledged += sum(op.batch >= 0 for op in ops[start:acked])
        self.idle += acked == start
        self.in_flight_kept += step > acked

    def checked(self, result: Verified) -> None:
        self.rounds += 1
        self.batches_verified += result.batches
        self.records_verified += result.records

    def __str__(self) -> str:
        return (
            f"torture: {self.rounds} rounds, {self.kills} kills, {self.acknowledged} batches "
            f"acknowledged ({self.idle} writer rounds acknowledged none), "
            f"{self.in_flight_kept} in-flight batches found committed, "
            f"{self.batches_verified} batches ({self.records_verified} records) verified "
            "whole, none partial"
        )
