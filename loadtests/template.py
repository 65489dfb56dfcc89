"""Templates side by side: CPU per page for hive.template, Twisted's flattenString and Jinja2.

The page is loadtests/apps/template_page.py: a 1,000-row table, three cells a row, one
slot each, in two forms (``iteration``: a renderer yielding a filled clone per row;
``subview``: a renderer per row, an Element each).  Jinja2 renders the same page (with
autoescape, encoded to UTF-8, as a server would send it).  The outputs are checked to be
the same bytes first.  Then, in rounds that take the engines in turn, each renders pages
for a while; the median of the rounds' CPU time per page is reported, with the ratios
the issue sets targets for: Twisted / hive (at least 5) and hive / Jinja2 (at most 2).
Not a test.

    .venv/bin/python -m loadtests.template
    .venv/bin/python -m loadtests.template --rows 1000 --rounds 7 --seconds 1

Needs Twisted and Jinja2 (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from twisted.web import template as twisted_template

import hive.template as hive_template
from loadtests.apps.template_page import JINJA, pages, table_rows


def twisted_page(element: Any) -> bytes:
    results: list[Any] = []
    twisted_template.flattenString(None, element).addBoth(results.append)
    (result,) = results
    if not isinstance(result, bytes):
        raise SystemExit(f"Twisted failed: {result}")
    return result


async def cpu_per_page(render: Callable[[], Awaitable[bytes]], seconds: float) -> float:
    """CPU seconds per page, rendering for about ``seconds`` of CPU."""
    await render()
    count = 0
    started = time.process_time()
    deadline = started + seconds
    while True:
        await render()
        count += 1
        now = time.process_time()
        if now >= deadline:
            return (now - started) / count


async def main(args: argparse.Namespace) -> None:
    rows = table_rows(args.rows)
    hive_pages = pages(hive_template)
    twisted_pages = pages(twisted_template)
    jinja = jinja2.Environment(autoescape=True).from_string(JINJA)

    def engine(render: Callable[[], bytes]) -> Callable[[], Awaitable[bytes]]:
        async def run() -> bytes:
            return render()

        return run

    engines: dict[str, Callable[[], Awaitable[bytes]]] = {}
    for form in args.forms:
        hive_class, twisted_class = hive_pages[form], twisted_pages[form]
        # Awaited in the running loop: a page that waits for nothing is written in the call.
        engines[f"hive {form}"] = lambda c=hive_class: hive_template.flattenString(None, c(rows))
        engines[f"twisted {form}"] = engine(lambda c=twisted_class: twisted_page(c(rows)))
    engines["jinja2"] = engine(lambda: jinja.render(rows=rows).encode())

    outputs = {name: await render() for name, render in engines.items()}
    reference = outputs["jinja2"]
    for name, output in outputs.items():
        if output != reference:
            raise SystemExit(f"{name} gives other bytes than Jinja2 ({len(output)} bytes)")
    print(f"{args.rows} rows, {len(reference):,} bytes a page, the same from every engine")

    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for round_ in range(args.rounds):
        for name, render in engines.items():
            # Twisted is slow: a tenth of the time still gives it several pages.
            budget = args.seconds / 4 if name.startswith("twisted") else args.seconds
            seconds[name].append(await cpu_per_page(render, budget))
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)

    median = {name: statistics.median(values) for name, values in seconds.items()}
    print()
    print(f"{'engine':20} {'CPU ms/page':>12} {'min':>8} {'max':>8}")
    for name, value in median.items():
        low, high = min(seconds[name]), max(seconds[name])
        print(f"{name:20} {value * 1e3:12.2f} {low * 1e3:8.2f} {high * 1e3:8.2f}")
    print()
    for form in args.forms:
        hive_cost = median[f"hive {form}"]
        faster = median[f"twisted {form}"] / hive_cost
        versus_jinja = hive_cost / median["jinja2"]
        print(
            f"{form:9}  Twisted / hive = {faster:5.1f}  (target >= 5)   "
            f"hive / Jinja2 = {versus_jinja:4.2f}  (target <= 2)"
        )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU per engine a round")
    parser.add_argument(
        "--forms", nargs="+", default=["iteration", "subview"], choices=["iteration", "subview"]
    )
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
