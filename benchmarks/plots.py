"""Draw the benchmark plots of docs/benchmarks.md from the CSVs the benchmarks write (matplotlib: the ``bench``
extra, ``.venv/bin/pip install -e '.[bench]'``).

    .venv/bin/python benchmarks/plots.py [--docs docs]

CSVs read from ``--docs`` and plots written there:

- ``p1_intake.csv`` (``benchmarks/order_intake.py --csv``): columns ``series, sandbox_hours, orders_in_sage`` ->
  ``p1_intake.png``, orders per hour over sandbox time, one line per series.
- ``p2_latency.csv`` (``benchmarks/backlog_latency.py --csv``): ``placed_to_commit_seconds,
  notification_to_commit_seconds`` -> ``p2_latency.png``, both distributions, p50/p99 marked.
- ``p5_confirmations.csv`` (``benchmarks/confirmations.py --csv``): ``sandbox_seconds, confirmed`` ->
  ``p5_confirmations.png``, confirmations over sandbox time against the plan.

P1's ``series`` is ``erpsync``, ``naive`` (the python-amazon-sp-api loop), ``arrived`` (orders placed on Amazon) or
``limit`` (what the usage plans allow);
``orders_in_sage`` is cumulative, so the plot shows its slope per sandbox hour over 10-minute spans (a series of two
rows, the limit, as one straight line). A CSV that is missing is skipped
with a note.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict[str, str]] | None:
    if not path.exists():
        print(f"skipped: {path} is missing")
        return None
    with path.open(newline="") as source:
        return list(csv.DictReader(source))


def p1(plt, docs: Path) -> None:
    rows = _rows(docs / "p1_intake.csv")
    if not rows:
        return
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        series.setdefault(row["series"], []).append((float(row["sandbox_hours"]), float(row["orders_in_sage"])))
    figure, axis = plt.subplots(figsize=(8, 4.5))
    styles = {"limit": {"color": "grey", "linestyle": "--"}, "erpsync": {"color": "tab:blue"},
              "naive": {"color": "tab:orange"}, "arrived": {"color": "tab:green", "linestyle": ":"}}
    for name, points in sorted(series.items()):
        points.sort()
        if len(points) == 2:  # a straight line (the limit): its slope over the whole run
            slope = (points[1][1] - points[0][1]) / (points[1][0] - points[0][0])
            axis.plot([points[0][0], points[1][0]], [slope, slope], label=name, **styles.get(name, {}))
            continue
        hours, per_hour = [], []  # the slope over a 10-minute span: a searchOrders page lands every 3 minutes
        for index, (start, taken) in enumerate(points):
            end = next((p for p in points[index:] if p[0] >= start + 1 / 6), None)
            if end is None:
                break
            hours.append((start + end[0]) / 2)
            per_hour.append((end[1] - taken) / (end[0] - start))
        axis.plot(hours, per_hour, label=name, **styles.get(name, {}))
    axis.set_xlabel("sandbox hours")
    axis.set_ylabel("orders into Sage per hour")
    axis.set_title("P1 order intake under Amazon's default usage plans")
    axis.legend()
    axis.grid(alpha=0.3)
    _save(plt, figure, docs / "p1_intake.png")


def p2(plt, docs: Path) -> None:
    rows = _rows(docs / "p2_latency.csv")
    if not rows:
        return
    delays = sorted(1000 * float(row["notification_to_commit_seconds"]) for row in rows
                    if row["notification_to_commit_seconds"])
    ends = sorted(1000 * float(row["placed_to_commit_seconds"]) for row in rows)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    top = max(ends + delays)
    bins = [top * n / 50 for n in range(51)]
    axis.hist(ends, bins=bins, color="tab:orange", alpha=0.5, label=f"order placed -> Sage commit ({len(ends)})")
    axis.hist(delays, bins=bins, color="tab:blue", alpha=0.7,
              label=f"notification -> Sage commit ({len(delays)})")
    p50, p99 = _percentile(delays, 50), _percentile(delays, 99)
    for value, name, colour in ((p50, "p50", "tab:green"), (p99, "p99", "tab:red")):
        axis.axvline(value, color=colour, linestyle="--", label=f"notification {name} {value:.0f} ms")
    axis.axvline(1000, color="grey", linestyle=":", label="target p99 1000 ms")
    axis.set_xlabel("ms")
    axis.set_ylabel("orders")
    axis.set_title("P2 latency at a steady 20 orders/s")
    axis.legend()
    _save(plt, figure, docs / "p2_latency.png")


def _percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def p5(plt, docs: Path, plan_rate: float = 2.0, burst: int = 10) -> None:
    rows = _rows(docs / "p5_confirmations.csv")
    if not rows:
        return
    seconds = [float(row["sandbox_seconds"]) for row in rows]
    confirmed = [int(row["confirmed"]) for row in rows]
    start = seconds[0]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    axis.step(seconds, confirmed, where="post", label="confirmations accepted", color="tab:blue")
    axis.plot([start, seconds[-1]], [burst, burst + plan_rate * (seconds[-1] - start)], color="grey",
              linestyle="--", label=f"the plan: burst {burst}, then {plan_rate:g}/s")
    axis.set_xlabel("sandbox seconds")
    axis.set_ylabel("packages confirmed")
    axis.set_title("P5 confirmShipment against its usage plan")
    axis.legend()
    axis.grid(alpha=0.3)
    _save(plt, figure, docs / "p5_confirmations.png")


def _save(plt, figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is missing: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for draw in (p1, p2, p5):
        draw(plt, args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
