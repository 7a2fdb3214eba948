"""Read Solomon VRPTW instances (and the best-known costs) into routing problems."""

from __future__ import annotations

import csv
from pathlib import Path

from engine.routing.problem import Job, Problem, Technician, Travel


def read_solomon(path: str | Path) -> Problem:
    """Read a Solomon instance as a ``min_travel`` problem with Euclidean travel (1 unit = 1 minute).

    The fleet size and capacity on line 5 become that many identical technicians based at node 0, with the
    depot's ready time and due date as their shift.

    Raises
    ------
    ValueError
        If the file is not in the Solomon text format.
    """
    path = Path(path)
    lines = [line.split() for line in path.read_text().splitlines()]
    try:
        header = next(k for k, row in enumerate(lines) if row[:1] == ["NUMBER"])
        n_vehicles, capacity = int(lines[header + 1][0]), float(lines[header + 1][1])
        first = next(k for k, row in enumerate(lines) if row[:2] == ["CUST", "NO."]) + 1
        rows = [[float(x) for x in row] for row in lines[first:] if len(row) == 7]
    except (StopIteration, ValueError, IndexError) as exc:
        raise ValueError(f"{path.name}: not a Solomon instance ({exc})") from exc
    if not rows or rows[0][0] != 0:
        raise ValueError(f"{path.name}: the first customer row must be the depot (number 0)")
    depot = (rows[0][1], rows[0][2])
    shift = (rows[0][4], rows[0][5])
    technicians = tuple(
        Technician(id=f"v{k}", start=depot, end=depot, shift=shift, capacity=capacity) for k in range(n_vehicles)
    )
    jobs = tuple(
        Job(id=str(int(r[0])), location=(r[1], r[2]), duration=r[6], time_windows=((r[4], r[5]),), demand=r[3])
        for r in rows[1:]
    )
    return Problem(technicians=technicians, jobs=jobs, travel=Travel(metric="euclidean"), objective="min_travel")


def read_bks(path: str | Path) -> dict[str, float]:
    """Best-known distance-only costs per instance from ``bks.csv`` (column ``bks_distance_only_cost``)."""
    with open(path, newline="") as fh:
        return {row["instance"]: float(row["bks_distance_only_cost"]) for row in csv.DictReader(fh)}
