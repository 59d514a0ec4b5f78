"""Run every benchmark case and print one table.

Each ``benchmarks/case_*.py`` module exposes ``run() -> list[dict]`` (row keys in
``_common.ROW_KEYS``). Every module runs in its own Python process, so the peak
memory a row reports belongs to its case alone.

    pip install -e '.[bench]'
    python benchmarks/run.py                  # every case
    python benchmarks/run.py sweep            # only case_sweep.py
    python benchmarks/run.py --json out.json  # also write the rows

``ratio`` is peer time / aftershock time (above 1: aftershock is faster). Times are
medians of several runs on whatever machine runs this: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import ROW_KEYS  # noqa: E402

_CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import importlib
rows = importlib.import_module({module!r}).run()
print("@@ROWS@@" + json.dumps(rows))
"""


def cases(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("case_*.py"))
    if only:
        names = [n for n in names if any(n == f"case_{o}" or n == o for o in only)]
    return names


def run_case(module: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(here=str(HERE), module=module)],
        capture_output=True,
        text=True,
        cwd=HERE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )
    marked = [line for line in proc.stdout.splitlines() if line.startswith("@@ROWS@@")]
    if proc.returncode != 0 or not marked:
        tail = (proc.stderr or proc.stdout)[-3000:]
        return [{"case": module, "note": f"FAILED (exit {proc.returncode}): {tail.strip().splitlines()[-1] if tail.strip() else ''}",
                 "agree": False}]
    rows = json.loads(marked[-1][len("@@ROWS@@"):])
    for r in rows:
        missing = [k for k in ROW_KEYS if k not in r]
        if missing:
            raise ValueError(f"{module}: row {r.get('case')!r} lacks {missing}")
    return rows


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format(value, spec) if spec else str(value)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("case", "aftershock ms", "peer", "peer ms", "ratio", "peak RSS MiB", "agree")
    body = [
        (
            r.get("case", ""),
            _fmt(r.get("aftershock_ms"), ",.1f"),
            _fmt(r.get("peer")),
            _fmt(r.get("peer_ms"), ",.1f"),
            _fmt(r.get("ratio"), ",.1f") + ("x" if r.get("ratio") is not None else ""),
            _fmt(r.get("peak_rss_mib"), ",.0f"),
            _fmt(r.get("agree")),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for b in body:
        print(" | ".join(c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(b, widths))))
    notes = [(r.get("case", ""), r.get("note")) for r in rows if r.get("note")]
    if notes:
        print()
        seen = set()
        for case, note in notes:
            if (case, note) not in seen:
                seen.add((case, note))
                print(f"- {case}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="case names (e.g. sweep signals); default: all")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for module in cases(args.only):
        print(f"running {module} ...", file=sys.stderr, flush=True)
        rows += run_case(module)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if any(r.get("agree") is False for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
