"""Write ``docs/reliability.md`` from the figures the reliability suite recorded.

    python -m pytest tests/test_reliability.py      # records .reliability/figures.jsonl
    python benchmarks/reliability_report.py         # (re)writes docs/reliability.md

The tests append JSON lines (see ``tests/reliability_figures.py``) to
``.reliability/figures.jsonl`` or to the file named by ``WFCTL_FIGURES``; this script
takes the newest session in that file (or ``--session ID``) and writes its figures as
tables: a summary per area (rounds raced, crash points injected, transient faults
injected, fuzz cases run, limits tested, ...) and every figure with the outcome of
the test that counted it. Nothing in the output is written by hand.

Options: ``--figures PATH`` (input), ``--out PATH`` (default ``docs/reliability.md``;
``-`` prints to stdout), ``--session ID``, ``--list`` (list the sessions in the file).
Exit status: 0, or 1 if the file holds no figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["Races", "Crash points", "Transient faults", "Permanent faults", "Tampering", "Fuzzing", "Names", "Limits",
         "Secrets", "Local store"]
WHAT = {  # what each area proves, one line
    "Races": "commands started at the same instant against one store: exactly one winner (the weaker properties on "
             "moto, whose conditional writes are not atomic), losers exit 3 (WF803) and change nothing, no lost "
             "update, versions contiguous, `effective/` in step and `doctor --verify` clean",
    "Crash points": "a simulated process death at every store call / S3 request: the previous state stays live "
                    "and readable, only `effective/` may lag, re-running the command succeeds and heals it",
    "Transient faults": "S3 errors on first attempts (503 SlowDown, 500, connection resets, read timeouts, lost "
                        "answers): retried, the operation succeeds, the store stays whole",
    "Permanent faults": "403 AccessDenied and 404 NoSuchBucket end in WF804 with a hint; a lost conditional write "
                        "(409/412) ends in WF803 with nothing changed",
    "Tampering": "objects, manifests, pointers and operator state changed behind wfctl's back: every read path "
                 "refuses with WF806 and writes nothing; commands that do not read the data are unaffected",
    "Fuzzing": "hypothesis-generated and mutated documents through `plan` and `register`: a plan or a user error, "
               "never a traceback, a hang or a store write from a read-only command",
    "Names": "invalid names (traversal, separators, encodings, NUL, lookalikes, length, case) refused before any "
             "store or file access; every store key built from valid names only",
    "Limits": "each input limit at its boundary: accepted at the limit, refused one step past it with a clear "
              "message and hint",
    "Secrets": "fake credentials and passwords never appear in output, errors (with -v and -vv), files or the store",
    "Local store": "files follow the umask and are never world-writable; a SIGKILLed lock holder blocks no one",
}


def load(path: Path) -> list[dict[str, Any]]:
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            print(f"warning: {path}:{number} is not JSON, skipped", file=sys.stderr)
    return entries


def sessions(entries: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Session id -> time of its last line."""
    last: dict[str, str] = {}
    for entry in entries:
        last[entry["session"]] = max(last.get(entry["session"], ""), entry.get("at", ""))
    return last


def plural(count: int, unit: str) -> str:
    """``1 case``, ``2 cases``, ``1 process``, ``1 fault injected``: the unit's first word is plural."""
    if count == 1 and unit:
        word, _, rest = unit.partition(" ")
        word = word[:-2] if word.endswith("sses") else word[:-1] if word.endswith("s") and not word.endswith("ss") else word
        unit = f"{word} {rest}".strip()
    return f"{count:,} {unit}".rstrip()


def totals(rows: list[dict[str, Any]]) -> str:
    """The sums by unit of the rows that count towards their area's total."""
    sums: dict[str, int] = {}
    for row in rows:
        if row.get("total", True):
            sums[row.get("unit", "")] = sums.get(row.get("unit", ""), 0) + int(row["count"])
    return ", ".join(plural(count, unit) for unit, count in sums.items()) or "-"


def result_of(rows: list[dict[str, Any]]) -> str:
    failed = [r for r in rows if r["result"] != "passed"]
    if not failed:
        return "passed"
    tests = sorted({r["test"].rsplit("::", 1)[-1] for r in failed})
    return f"**FAILED** ({len(failed)} of {len(rows)} figures; {', '.join(tests)})"


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each breakdown (``total: false``, named ``MAIN: what``) right after its main figure."""
    mains = [r for r in rows if r.get("total", True)]
    parts = [r for r in rows if not r.get("total", True)]
    out: list[dict[str, Any]] = []
    for main in mains:
        out.append(main)
        mine = [p for p in parts if p["name"].startswith(f"{main['name']}:") and p["test"] == main["test"]]
        out += mine
        parts = [p for p in parts if p not in mine]
    return out + parts


def row_result(row: dict[str, Any]) -> str:
    """A figure that keeps its own score says how many of its cases failed."""
    failures = row.get("failures")
    if row["result"] == "passed":
        return "passed"
    if failures:
        return f"**failed** ({failures:,} of {int(row['count']):,})" if int(row["count"]) >= failures else "**failed**"
    return f"**{row['result']}**"


def detail_text(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(detail.items()):
        if isinstance(value, list):
            value = "; ".join(map(str, value)) or "none"
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        parts.append(f"{key}: {value}")
    return "<br>".join(parts).replace("|", "\\|")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(entries: list[dict[str, Any]], session: str, source: Path) -> str:
    mine = [e for e in entries if e["session"] == session]
    figures = [e for e in mine if e.get("kind", "figure") == "figure"]
    tests = {e["test"]: e for e in mine if e.get("kind") == "test"}
    meta = next((e for e in mine if e.get("kind") == "session"), {})
    by_area: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in figures:
        by_area[row["category"]].append(row)
    areas = [a for a in ORDER if a in by_area] + sorted(a for a in by_area if a not in ORDER)

    passed = sum(1 for t in tests.values() if t["result"] == "passed")
    failed = sorted(name for name, t in tests.items() if t["result"] == "failed")
    seconds = sum(float(t.get("seconds", 0)) for t in tests.values())
    when = (max(e.get("at", "") for e in mine) or "?").replace("T", " ").replace("+00:00", " UTC")
    commit = (meta.get("commit") or "unknown")[:12] + (" with uncommitted changes" if meta.get("dirty") else "")
    try:
        shown = source.resolve().relative_to(ROOT)
    except ValueError:
        shown = source

    out = [
        "# Reliability",
        "",
        "<!-- Generated by benchmarks/reliability_report.py from the figures recorded by",
        "     tests/test_reliability.py. Do not edit: re-run the tests, then the script. -->",
        "",
        "What the reliability suite (`tests/test_reliability.py`) exercised in its last recorded run, and whether",
        "every property held. Every number here was counted by the tests while they ran; to regenerate:",
        "",
        "```sh",
        "python -m pytest tests/test_reliability.py   # appends to .reliability/figures.jsonl (or $WFCTL_FIGURES)",
        "python benchmarks/reliability_report.py      # rewrites this file from the newest run",
        "```",
        "",
        f"Run `{session}`, finished {when}: wfctl {meta.get('wfctl', '?')}, commit {commit}, "
        f"Python {meta.get('python', '?')} on {meta.get('cpus', '?')} CPUs; "
        f"{len(tests)} tests, {passed} passed, {len(failed)} failed, {seconds:,.0f} s of test time "
        f"(figures from `{shown}`).",
        "",
        "## Summary",
        "",
        "| Area | Exercised | Result | What it proves |",
        "| --- | --- | --- | --- |",
    ]
    for area in areas:
        rows = by_area[area]
        exercised = totals(rows)
        if area == "Limits":
            limits = sorted({r["detail"].get("rule") for r in rows if r["detail"].get("rule")})
            exercised = f"{len(limits)} limits ({', '.join(limits)}); {exercised}"
        if area == "Fuzzing":
            cases = sum(int(r["detail"].get("cases", 0)) for r in rows)
            exercised = f"{cases:,} cases; {exercised}"
        out.append(f"| {area} | {cell(exercised)} | {result_of(rows)} | {cell(WHAT.get(area, ''))} |")
    for area in areas:
        out += ["", f"## {area}", "", "| Figure | Count | Result | Detail |", "| --- | ---: | --- | --- |"]
        for row in ordered(by_area[area]):
            name = row["name"] if row.get("total", True) else f"&nbsp;&nbsp;↳ {row['name']}"
            out.append(f"| {cell(name)} | {plural(int(row['count']), row.get('unit', ''))} | {row_result(row)} | "
                       f"{detail_text(row.get('detail') or {})} |")
    if failed:
        out += ["", "## Failing tests", "",
                "A failing test is a property that did not hold: each is a bug in wfctl or in its environment.", ""]
        out += [f"- `{name}`" for name in failed]
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(os.environ.get("WFCTL_FIGURES") or ROOT / ".reliability" / "figures.jsonl")
    parser.add_argument("--figures", type=Path, default=default, help=f"figures file (default {default})")
    parser.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"), help="output file, or - for stdout")
    parser.add_argument("--session", help="session id (default: the newest in the file)")
    parser.add_argument("--list", action="store_true", help="list the sessions in the file and exit")
    args = parser.parse_args(argv)
    if not args.figures.is_file():
        print(f"error: no figures at {args.figures}: run `python -m pytest tests/test_reliability.py` first",
              file=sys.stderr)
        return 1
    entries = load(args.figures)
    known = sessions(entries)
    if args.list:
        for session, at in sorted(known.items(), key=lambda item: item[1]):
            count = sum(1 for e in entries if e["session"] == session and e.get("kind", "figure") == "figure")
            print(f"{session}  {at}  {count} figures")
        return 0
    with_figures = {e["session"] for e in entries if e.get("kind", "figure") == "figure"}
    if not with_figures:
        print(f"error: {args.figures} holds no figures", file=sys.stderr)
        return 1
    session = args.session or max(with_figures, key=lambda s: known[s])
    if session not in with_figures:
        print(f"error: no figures for session {session!r} (see --list)", file=sys.stderr)
        return 1
    text = render(entries, session, args.figures)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} from session {session}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
