"""The tables ``hive status`` and ``hive list`` print, from "status" answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_hives", "format_status"]

_STATUS_COLUMNS = ("SLOT", "PID", "GEN", "STATE", "REQUESTS", "MEMORY", "CPU", "UPTIME")
_LEFT_ALIGNED = frozenset({"STATE"})


def format_status(data: Mapping[str, Any]) -> str:
    """The table ``hive status`` prints, from the "status" command's data; no final newline.

    Uptime is ``data["now"]`` minus each worker's ``started_at`` (any one clock will do).
    A missing or malformed value shows as ``-``.
    """
    workers = [w for w in data.get("workers") or () if isinstance(w, Mapping)]
    workers.sort(key=lambda w: (_sort_key(w.get("slot")), _sort_key(w.get("generation"))))
    now = _number(data.get("now"))
    rows = [_STATUS_COLUMNS]
    for worker in workers:
        started = _number(worker.get("started_at"))
        cpu = _number(worker.get("cpu_seconds"))
        rows.append(
            (
                _integer(worker.get("slot")),
                _integer(worker.get("pid")),
                _integer(worker.get("generation")),
                str(worker.get("state", "-")),
                _integer(worker.get("requests")),
                _bytes(worker.get("rss")),
                "-" if cpu is None else f"{cpu:.1f}",
                "-" if now is None or started is None else _duration(now - started),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_STATUS_COLUMNS))]
    build = data.get("build")
    lines = [
        f"hive supervisor pid {_integer(data.get('pid'))},"
        f" generation {_integer(data.get('generation'))}"
        + (f", {build} build" if isinstance(build, str) else "")
    ]
    for row in rows:
        cells = [
            cell.ljust(width) if name in _LEFT_ALIGNED else cell.rjust(width)
            for name, cell, width in zip(_STATUS_COLUMNS, row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


_HIVE_COLUMNS = ("NAME", "PID", "WORKERS", "GEN", "UPTIME", "APP", "LISTENING")
_HIVES_LEFT = frozenset({"NAME", "APP", "LISTENING"})


def format_hives(hives: Sequence[Mapping[str, Any]]) -> str:
    """The table ``hive list`` prints: one line per hive, from each one's "status" data
    (with its ``name``; a hive that did not answer has an ``error`` instead)."""
    rows = [_HIVE_COLUMNS]
    for hive in hives:
        error = hive.get("error")
        if error:
            rows.append((str(hive.get("name", "-")), "-", "-", "-", "-", f"({error})", "-"))
            continue
        workers = [w for w in hive.get("workers") or () if isinstance(w, Mapping)]
        ready = sum(w.get("state") == "ready" for w in workers)
        now, started = _number(hive.get("now")), _number(hive.get("started_at"))
        urls = hive.get("urls")
        rows.append(
            (
                str(hive.get("name") or "-"),
                _integer(hive.get("pid")),
                f"{ready}/{_integer(hive.get('target'))}",
                _integer(hive.get("generation")),
                "-" if now is None or started is None else _duration(now - started),
                str(hive.get("app") or "-"),
                " ".join(str(url) for url in urls) if isinstance(urls, list) and urls else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HIVE_COLUMNS))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if name in _HIVES_LEFT else cell.rjust(width)
            for name, cell, width in zip(_HIVE_COLUMNS, row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


def _number(value: object) -> float | None:
    """`value` if it is an int or a float (bool is neither here), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _sort_key(value: object) -> float:
    return value if isinstance(value, int | float) else float("inf")


def _integer(value: object) -> str:
    number = _number(value)
    return "-" if number is None else str(int(number))


def _bytes(value: object) -> str:
    """1536 -> 1.5K, 24536678 -> 23.4M (binary units, as ps and top count)."""
    number = _number(value)
    if number is None:
        return "-"
    size = float(number)
    if size < 1024:
        return f"{int(size)}B"
    for unit in "KMGT":
        size /= 1024
        if round(size, 1) < 1024 or unit == "T":
            return f"{size:.1f}{unit}"
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    """45 -> 45s, 307 -> 5m07s, 3725 -> 1h02m, 273600 -> 3d04h."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
