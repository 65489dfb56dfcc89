"""hive against itself: the same hello, access log off and on, from several source trees.

Each tree is a checkout of hive (another commit: ``git worktree add ../before REV``) or
the compiled copy (``make compiled``: build/compiled); every round runs each tree with
``--no-access-log`` and with its access log on (to a file), in turn, on the benchmark's
machinery (loadtests/bench.py), and the medians are printed: what each tree costs per
request, and what its access log adds.  Trees measured in one run share the machine's
noise, so their differences are the figures to trust.  Not a test.

    .venv/bin/python -m loadtests.builds --tree before=../before --tree now=. \\
        --tree compiled=build/compiled --rounds 3 --seconds 4
    .venv/bin/python -m loadtests.builds --tree before=../before --tree now=. \\
        --scenarios hello,hello-close,post64k,static1m,pipeline,deep --no-log-only
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from loadtests.bench import (
    SCENARIOS,
    STATIC_CONTENT,
    STATIC_NAME,
    Server,
    bench_server,
    hive_command,
    median_rows,
)


def _servers(trees: list[tuple[str, Path]], with_log: bool) -> list[Server]:
    servers = []
    for name, root in trees:
        servers.append(Server(f"{name}.nolog", f"{root}, --no-access-log",
                              hive_command(access_log=False), root=root))  # fmt: skip
        if with_log:
            servers.append(Server(f"{name}.log", f"{root}, access log to a file",
                                  hive_command(access_log=True), root=root))  # fmt: skip
    return servers


def _tree(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    root = Path(path).resolve()
    if not sep or not name or not (root / "hive" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"not NAME=DIR with hive/ in DIR: {text!r}")
    return name, root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=_tree, action="append", required=True,
                        help="NAME=DIR, a source tree to run hive from (repeat it)")  # fmt: skip
    parser.add_argument("--scenarios", default="hello", help="comma-separated (hello)")
    parser.add_argument("--no-log-only", action="store_true", help="leave the log-on rows out")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    scenarios = [SCENARIOS[name] for name in args.scenarios.split(",")]
    servers = _servers(args.tree, not args.no_log_only)
    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="builds-static-") as static:
        static_dir = Path(static)
        (static_dir / STATIC_NAME).write_bytes(STATIC_CONTENT)
        for number in range(1, args.rounds + 1):
            print(f"-- round {number} of {args.rounds}", flush=True)
            rows: list[dict[str, Any]] = []
            for server in servers:
                rows += bench_server(server, scenarios, args, static_dir)
            rounds.append(rows)
    cost = {(r["server"], r["scenario"]): r.get("cpu_us_per_request") for r in median_rows(rounds)}
    first = args.tree[0][0]
    print(f"\nserver CPU µs per request, medians of {args.rounds}; ratio: over {first}'s")
    for scenario in scenarios:
        print(f"\n{scenario.name}:")
        print(f"  {'tree':12} {'log off':>9} {'ratio':>6} {'log on':>9} {'the log':>8}")
        base = cost.get((f"{first}.nolog", scenario.name))
        for name, _ in args.tree:
            off = cost.get((f"{name}.nolog", scenario.name))
            on = cost.get((f"{name}.log", scenario.name))
            ratio = f"{off / base:6.2f}" if off and base else "     -"
            shown_on = f"{on:9.1f}" if on else "        -"
            log = f"{on - off:8.1f}" if on and off else "       -"
            shown_off = f"{off:9.1f}" if off else "        -"
            print(f"  {name:12} {shown_off} {ratio} {shown_on} {log}")


if __name__ == "__main__":
    main()
