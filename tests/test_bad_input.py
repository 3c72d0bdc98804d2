"""Hostile and broken input through the real CLI, in a subprocess.

The contract (SPEC section 3): no input makes ``wfctl validate`` print a traceback,
crash or hang. It exits 0 or 1, prints the JSON report on stdout, and every
diagnostic carries a known rule id, a 1-based line and column, a message and a hint.

Each case is a small repo (the bad file ``x.yaml`` beside a valid component and
workflow) run through ``python -m wfctl --repo ROOT validate -o json`` with a timeout
and a 2 GiB address-space cap, so a hang or a memory blow-up fails the test instead of
the machine. The peak RSS of every run is measured exactly (``wait4``).

The runs are independent processes, so the module starts the selected ones up front,
a few at a time (one per CPU), and each test waits for its own: the file takes seconds,
not a minute. Under pytest-xdist every test runs its own case on demand.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wfctl.rules import RULES

TIMEOUT = 60.0  # generous: every case takes well under a second when wfctl is right
ADDRESS_SPACE = 2 * 1024**3  # a "billion laughs" blow-up hits this and fails loudly
PEAK_RSS_KIB = 1024**2  # 1 GiB (ru_maxrss is in KiB on Linux)
BAD = "x.yaml"

HEADER = "apiVersion: wfctl/v1\nkind: Workflow\n"
COMPONENT = """\
apiVersion: wfctl/v1
kind: Component
metadata:
  name: c
  owner: platform
spec:
  type: bash
  inputs:
    type: object
    properties:
      command: {type: string}
"""
WORKFLOW = """\
apiVersion: wfctl/v1
kind: Workflow
metadata:
  name: w
  owner: platform
spec:
  tasks:
    - name: a
      component: c
      with: {command: "echo a"}
    - name: b
      component: c
      depends_on: [a]
      with: {command: "echo b"}
"""
COMPONENT_FILE, WF_FILE = "ok/component.yaml", "ok/workflow.yaml"
VALID = {COMPONENT_FILE: COMPONENT, WF_FILE: WORKFLOW}

Content = str | bytes | Callable[[Path], None]  # text, bytes, or a writer for big files


# --- the cases ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A repo to validate and what must be true of the report.

    ``files`` replace or join the valid component and workflow; ``rules`` must all
    appear; ``any_of``: at least one must appear; ``exact``: the rules reported on
    ``x.yaml`` are exactly ``rules``; ``exit`` is the required exit code (None: 0 or 1)."""

    files: Mapping[str, Content]
    rules: frozenset[str] = frozenset()
    any_of: frozenset[str] = frozenset()
    exact: bool = False
    exit: int | None = 1
    timeout: float = TIMEOUT
    valid_neighbours: bool = True


def case(content: Content, *rules: str, any_of: tuple[str, ...] = (), exact: bool = False, exit: int | None = 1,
         timeout: float = TIMEOUT, rel: str = BAD) -> Case:
    return Case({rel: content}, frozenset(rules), frozenset(any_of), exact, exit, timeout)


def billion_laughs(levels: int = 9, fanout: int = 10) -> str:
    """9 levels of 10 aliases: 10^9 strings once expanded."""
    lines = [HEADER, "metadata: {name: lol, owner: x}\nspec:\n", "  l0: &l0 [" + ", ".join(['"lol"'] * fanout) + "]\n"]
    lines += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fanout) + "]\n" for i in range(1, levels)]
    lines.append(f"  tasks: *l{levels - 1}\n")
    return "".join(lines)


def merge_laughs(levels: int = 9, fanout: int = 10) -> str:
    """The same through ``<<`` merge keys: 10^9 merged pairs to flatten (all the same key)."""
    lines = [HEADER, "metadata: {name: lol, owner: x}\nspec:\n", "  m0: &m0 {k: v}\n"]
    lines += [f"  m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * fanout) + "]}\n" for i in range(1, levels)]
    return "".join(lines)


def deep_block(levels: int, per_line: int, newline: str = "\n") -> str:
    """Block sequences nested ``levels`` deep, ``per_line`` levels on each line
    (``- - - -``), each line indented under the innermost item of the one before."""
    lines = [" " * (2 * per_line * i) + "- " * per_line for i in range(levels // per_line)]
    return HEADER + "spec:" + newline + newline.join(lines) + "x" + newline


def huge_file(path: Path) -> None:
    """50 MiB: a valid document, then 50 MiB of comment lines (written in one go)."""
    with path.open("wb") as handle:
        handle.write((HEADER + "metadata: {name: big, owner: x}\nspec: {tasks: []}\n").encode())
        handle.write((b"# " + b"x" * 1021 + b"\n") * (50 * 1024))


def huge_sparse_file(path: Path) -> None:
    """50 MiB that cost no disk: a header, then a hole (reads back as NULs)."""
    with path.open("wb") as handle:
        handle.write(HEADER.encode())
        handle.truncate(50 * 1024**2)


WRONG_TYPES_EVERYWHERE = HEADER + """\
metadata:
  name: w
  owner: []
  tags: {a: 1}
spec:
  schedule: daily
  groups: [1, 2]
  defaults: {retry: true, timeout_seconds: "soon"}
  tasks:
    - name: a
      component: c
      depends_on: {a: 1}
      with: []
      retry: true
    - name: b
      component: c
      with: {command: 5}
      retry: {max_retries: "x"}
      timeout_seconds: {}
    - 7
    - [x]
---
apiVersion: wfctl/v1
kind: Workflow
metadata: []
spec: 5
---
apiVersion: wfctl/v1
kind: Workflow
metadata: {name: 12, owner: x}
spec: {tasks: [{name: a, component: c, retry: true}]}
---
apiVersion: wfctl/v1
kind: Workflow
metadata: {name: t, owner: x}
spec: {tasks: "x"}
---
apiVersion: wfctl/v1
kind: Component
metadata: {name: d, owner: x}
spec: {type: 5, inputs: [], defaults: 3}
"""

TEMPLATE_WITH_WRONG_TYPES = {
    "t.yaml": """\
apiVersion: wfctl/v1
kind: WorkflowTemplate
metadata: {name: t, owner: x}
spec:
  parameters: {type: object, properties: [1], required: x}
  workflow:
    tasks:
      - name: a
        component: c
        with: {command: "${{ values.cmd }}"}
""",
    "w.yaml": """\
apiVersion: wfctl/v1
kind: Workflow
metadata: {name: from-t, owner: x}
spec:
  template: t
  values: {cmd: [1, 2]}
""",
}


def wf(old: str, new: str) -> str:
    """The valid workflow with one replacement (which must take effect)."""
    assert old in WORKFLOW
    return WORKFLOW.replace(old, new, 1)


def component_inputs(inputs: str) -> str:
    return COMPONENT.split("  inputs:")[0] + f"  inputs: {inputs}\n"


def schedule(**fields: str) -> str:
    body = ", ".join(f'{key}: "{value}"' for key, value in fields.items())
    return wf("spec:\n", f"spec:\n  schedule: {{{body}}}\n")


CASES: dict[str, Case] = {
    "valid-repo": Case({}, exact=True, exit=0),
    # malformed YAML, several kinds
    "unclosed-flow-sequence": case(HEADER + "spec: [a, b\n", "WF100"),
    "unclosed-flow-mapping": case(HEADER + "spec: {a: 1\n", "WF100"),
    "stray-closing-brackets": case(HEADER + "spec: a]\nmetadata: }\n", "WF100"),
    "unclosed-double-quote": case(HEADER + 'metadata: {name: "abc}\nspec: {}\n', "WF100"),
    "colon-in-plain-value": case(HEADER + "metadata:\n  name: a: b\n", "WF100"),
    "bad-dedent": case(HEADER + "metadata:\n    name: a\n  owner: b\n", "WF100"),
    "undefined-alias": case(HEADER + "spec: *nope\n", "WF100"),
    "reserved-indicator": case(HEADER + "spec: @foo\n", "WF100"),
    "unsupported-yaml-version": case("%YAML 9.9\n---\n" + HEADER, "WF100"),
    "directive-without-document": case("%TAG ! tag:x,2000:\n" + HEADER, "WF100"),
    "control-character": case(HEADER + "metadata: {name: a\x07b}\n", "WF100"),
    "unknown-escape": case(HEADER + 'metadata: {name: "\\q"}\n', "WF100"),
    "lone-surrogate-escape": case(HEADER + 'metadata: {name: "\\ud800"}\n', "WF100"),
    "block-scalar-bad-indent": case(HEADER + "metadata:\n  description: |\n    a\n  b\n c\n", "WF100"),
    "sequence-inside-mapping": case(HEADER + "metadata:\n  name: a\n- b\n", "WF100"),
    "crlf-unclosed": case((HEADER + "spec: [a,\n  b\n").replace("\n", "\r\n"), "WF100"),
    "tab-indentation": case(HEADER + "metadata:\n\tname: a\n\towner: b\n", "WF100", exact=True),
    "duplicate-keys": case(wf("  owner: platform\n", "  owner: platform\n  owner: other\n"), "WF101",
                           rel=WF_FILE),
    # encodings and binary files
    "binary-with-marker": case(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"apiVersion: wfctl/v1\x00\xff\xfe"
                               + bytes(range(256)) * 4, "WF105", exact=True),
    "latin-1": case((HEADER + "metadata:\n  name: café\n  owner: Müller\nspec: {tasks: []}\n").encode("latin-1"),
                    "WF105", exact=True),
    "utf-16": case((HEADER + "metadata: {name: a}\n").encode("utf-16"), "WF105", exact=True),
    # resource exhaustion
    "billion-laughs": case(billion_laughs(), "WF103"),
    "billion-laughs-merge-keys": case(merge_laughs(), "WF103", timeout=15),  # the right answer takes well under a second
    "flow-nesting-5000": case(HEADER + "spec: " + "[" * 5_000 + "]" * 5_000 + "\n", "WF106"),
    "flow-nesting-100000": case(HEADER + "spec: " + "[" * 100_000 + "]" * 100_000 + "\n", "WF106"),
    "flow-mapping-nesting-100000-unclosed": case(HEADER + "spec: " + "{a: " * 100_000 + "\n", any_of=("WF100", "WF106")),
    "block-mapping-nesting-2500": case(HEADER + "spec:\n" + "".join(" " * (i + 1) + "k:\n" for i in range(2_500)),
                                       "WF106"),  # 3 MiB of indentation: any deeper is over the size limit
    "block-nesting-5000": case(deep_block(5_000, 100), "WF106"),
    "block-nesting-50000": case(deep_block(50_000, 1_000), "WF106"),
    "block-nesting-5000-one-line": case("- " * 5_000 + "x\n---\n" + HEADER, "WF106"),
    "block-nesting-100000-one-line": case("- " * 100_000 + "x\n---\n" + HEADER, "WF106"),
    "complex-keys-100000-one-line": case("? " * 100_000 + "x\n---\n" + HEADER, any_of=("WF106", "WF109")),
    "block-nesting-40000-cr-line-breaks": case(deep_block(40_000, 1_000, "\r"), "WF106"),
    "file-50mib": case(huge_file, "WF104", exact=True),
    "file-50mib-sparse": case(huge_sparse_file, "WF104", exact=True),
    "documents-2000": case("---\n".join(
        f"apiVersion: wfctl/v1\nkind: Component\nmetadata: {{name: c{i}, owner: x}}\nspec: {{type: bash}}\n"
        for i in range(2_000)), "WF107"),
    "line-1mib-value": case(HEADER + "metadata: {name: long, owner: x, description: " + "a" * 1024**2
                            + "}\nspec: {tasks: []}\n", "WF305"),
    "line-1mib-garbage": case(HEADER + "spec: " + "a: [b, {c: 'd'}, " * 60_000 + "\n", any_of=("WF100", "WF106")),
    # documents of the wrong shape
    "document-scalar": case(HEADER + "---\njust a scalar\n", "WF108"),
    "document-list": case(HEADER + "---\n- a\n- b\n", "WF108"),
    "document-flow-list": case("apiVersion: wfctl/v1\n---\n[wfctl/v1, Workflow]\n", "WF108"),
    "tag-local": case(HEADER + "spec: !custom {a: 1}\n", "WF109"),
    "tag-python-object": case(HEADER + "spec: !!python/object:os.system [echo]\n", "WF109"),
    "tag-binary": case(HEADER + "metadata: !!binary aGVsbG8=\n", "WF109"),
    "tag-on-root": case("!wfctl/v1 {apiVersion: wfctl/v1}\n", "WF109"),
    "tag-int-empty": case(HEADER + "spec: !!int\n", "WF109"),
    "tag-float-empty-quoted": case(HEADER + "spec: !!float ''\n", "WF109"),
    "tag-bool-not-a-bool": case(HEADER + "spec: !!bool maybe\n", "WF109"),
    # wrong types, one field at a time (the workflow's own file) and all at once
    "wrong-type-spec": case(HEADER + "metadata: {name: w, owner: x}\nspec: 5\n", "WF200", rel=WF_FILE),
    "wrong-type-tasks": case(HEADER + "metadata: {name: w, owner: x}\nspec:\n  tasks: x\n", "WF200", rel=WF_FILE),
    "wrong-type-metadata": case(wf("metadata:\n  name: w\n  owner: platform\n", "metadata: []\n"), "WF200", rel=WF_FILE),
    "wrong-type-name": case(wf("name: w", "name: 12"), "WF200", rel=WF_FILE),
    "wrong-type-depends-on": case(wf("depends_on: [a]", "depends_on: {a: 1}"), "WF200", rel=WF_FILE),
    "wrong-type-with": case(wf('with: {command: "echo b"}', "with: []"), "WF200", rel=WF_FILE),
    "wrong-type-schedule": case(wf("spec:\n", "spec:\n  schedule: daily\n"), "WF200", rel=WF_FILE),
    "wrong-type-retry": case(wf("depends_on: [a]", "depends_on: [a]\n      retry: true"), "WF200", rel=WF_FILE),
    "wrong-type-groups": case(wf("spec:\n", "spec:\n  groups: [1, 2]\n"), "WF200", rel=WF_FILE),
    "wrong-type-defaults": case(wf("spec:\n", "spec:\n  defaults: [1]\n"), "WF200", rel=WF_FILE),
    "wrong-type-defaults-retry": case(wf("spec:\n", "spec:\n  defaults: {retry: 3}\n"), "WF200", rel=WF_FILE),
    "wrong-type-timeout": case(wf("depends_on: [a]", "depends_on: [a]\n      timeout_seconds: [1]"), "WF200", rel=WF_FILE),
    "wrong-type-component": case(wf("component: c\n      depends_on", "component: [c]\n      depends_on"), "WF200", rel=WF_FILE),
    "wrong-type-task": case(wf("  tasks:\n", "  tasks:\n    - 7\n    - [x]\n"), "WF200", rel=WF_FILE),
    "wrong-types-everywhere": case(WRONG_TYPES_EVERYWHERE, "WF200", rel=WF_FILE),
    "template-with-wrong-types": Case(TEMPLATE_WITH_WRONG_TYPES, frozenset({"WF405", "WF403"})),
    # a component whose inputs schema is no JSON Schema (WF405), used by a task
    "inputs-schema-bad-type": case(component_inputs("{type: 5}"), "WF405", rel=COMPONENT_FILE),
    "inputs-schema-bad-regex": case(component_inputs("{type: object, properties: {command: {pattern: '['}}}"),
                                    "WF405", rel=COMPONENT_FILE),
    "inputs-schema-properties-list": case(component_inputs("{type: object, properties: [1]}"), "WF405",
                                          rel=COMPONENT_FILE),
    "inputs-schema-required-string": case(component_inputs("{type: object, required: command}"), "WF405",
                                          rel=COMPONENT_FILE),
    # schedule values that are no timezone or cron
    **{f"timezone-{name}": case(schedule(cron="0 2 * * *", timezone=tz), any_of=("WF501", "WF200"), rel=WF_FILE)
       for name, tz in [("folder", "America"), ("traversal", "../../../etc/passwd"),
                        ("too-long", "a" * 300), ("nul", "UTC\\0"), ("empty", "")]},
    **{f"cron-{name}": case(schedule(cron=cron, timezone="UTC"), any_of=("WF500", "WF200"), rel=WF_FILE)
       for name, cron in [("feb-31", "0 0 31 2 *"), ("bad-preset", "@every"),
                          ("out-of-range", "99 99 99 99 99"), ("step-0", "*/0 * * * *"), ("letters", "a b c d e")]},
    **{f"cron-{name}": case(schedule(cron=cron, timezone="UTC"), exit=None, rel=WF_FILE)  # valid or not: no crash
       for name, cron in [("nth-weekday", "0 0 * * 5#5"), ("huge-step", "0 0 1-31/99999999999999999999 * *"),
                          ("long", " ".join(["1,2,3,4,5"] * 5) * 200)]},
    # several broken files at once: each is reported, none hides another
    "everything-at-once": Case({
        "a.yaml": HEADER + "spec: [\n",
        "b.yaml": (HEADER + "metadata: {name: é}\n").encode("latin-1"),
        "c.yaml": HEADER + "spec: " + "[" * 100_000 + "\n",
        "d.yaml": b"wfctl/\x00\x01\x02",
        "e.yaml": HEADER + "spec: !x 1\n",
    }, frozenset({"WF100", "WF105", "WF106", "WF109"})),
    # YAML without the wfctl/ marker is not ours, however broken
    "foreign-yaml": Case({"ci/broken.yaml": "on: [push\n\t- x: ]]]\n", "ci/deep.yml": "[" * 100_000}, exact=True, exit=0),
}


# --- running wfctl -------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_kib: int  # the child's own peak RSS, from wait4
    files: set[str] = field(default_factory=set)


def _cap_memory() -> None:  # in the child, before exec; the launching thread is pytest's only one
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _environment() -> dict[str, str]:
    """The test's environment without a developer's WFCTL_* settings or CI's summary file."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WFCTL_") and k not in ("GITHUB_STEP_SUMMARY", "NO_COLOR")}


def write(root: Path, rel: str, content: Content) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if callable(content):
        content(path)
    else:
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


class Runner:
    """Runs ``wfctl validate`` on case repos, ``jobs`` processes at a time, all from this
    thread: ``wait4`` reaps each child with its own resource usage."""

    def __init__(self, base: Path, jobs: int) -> None:
        self.base, self.jobs = base, jobs
        self.queue: list[str] = []
        self.running: dict[int, tuple[str, subprocess.Popen[bytes], float, Any, Any]] = {}
        self.done: dict[str, Run | str] = {}

    def submit(self, names: list[str]) -> None:
        self.queue += [n for n in names if n not in self.done and n not in self.queue
                       and all(n != r[0] for r in self.running.values())]

    def result(self, name: str) -> Run:
        self.submit([name])
        if name in self.queue:  # what the test needs now goes first
            self.queue.remove(name)
            self.queue.insert(0, name)
        while name not in self.done:
            self._step()
        outcome = self.done[name]
        if isinstance(outcome, str):
            pytest.fail(outcome)
        return outcome

    def _step(self) -> None:
        while self.queue and len(self.running) < self.jobs:
            self._start(self.queue.pop(0))
        for pid, (name, proc, deadline, out, err) in list(self.running.items()):
            reaped, status, usage = os.wait4(pid, os.WNOHANG)
            if reaped:
                proc.returncode = os.waitstatus_to_exitcode(status)
                del self.running[pid]
                self.done[name] = self._finish(name, proc.returncode, out, err, usage.ru_maxrss)
            elif time.monotonic() > deadline:
                proc.kill()
                os.wait4(pid, 0)
                proc.returncode = -9
                del self.running[pid]
                out.close(), err.close()
                self.done[name] = f"wfctl validate hung on case {name!r}: no answer within {CASES[name].timeout:.0f} s"
        time.sleep(0.005)

    def _start(self, name: str) -> None:
        spec = CASES[name]
        root = self.base / name
        files = {**(VALID if spec.valid_neighbours else {}), **spec.files}
        for rel, content in files.items():
            write(root, rel, content)
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 - closed by _finish
        proc = subprocess.Popen([sys.executable, "-m", "wfctl", "--repo", str(root), "validate", "-o", "json"],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=_environment(),
                                preexec_fn=_cap_memory)
        self.running[proc.pid] = (name, proc, time.monotonic() + spec.timeout, out, err)

    def _finish(self, name: str, code: int, out: Any, err: Any, peak_kib: int) -> Run:
        texts = []
        for handle in (out, err):
            handle.seek(0)
            texts.append(handle.read().decode("utf-8", "replace"))
            handle.close()
        for big in (self.base / name).rglob("*.yaml"):  # free the disk of the 50 MiB cases at once
            if big.stat().st_size > 10 * 1024**2:
                big.unlink()
        spec = CASES[name]
        return Run(code, texts[0], texts[1], peak_kib, set({**(VALID if spec.valid_neighbours else {}), **spec.files}))

    def close(self) -> None:
        for pid, (_, proc, _, out, err) in self.running.items():
            proc.kill()
            os.wait4(pid, 0)
            proc.returncode = -9
            out.close(), err.close()


@pytest.fixture(scope="module")
def runner(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    run = Runner(tmp_path_factory.mktemp("bad_input"), jobs=max(1, min(os.cpu_count() or 1, 8)))
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # start every selected case of this module now
        run.submit([str(item.callspec.params["name"]) for item in request.session.items
                     if isinstance(item, pytest.Function) and item.module is request.module
                     and hasattr(item, "callspec") and "name" in item.callspec.params])
    yield run
    run.close()


# --- the contract --------------------------------------------------------------------


def check_report(run: Run) -> dict[str, Any]:
    """Assert the contract on one run; return the parsed JSON report."""
    context = f"exit {run.returncode}\n--- stdout ---\n{run.stdout[:3000]}\n--- stderr ---\n{run.stderr[:3000]}"
    assert "Traceback" not in run.stderr, context
    assert "Traceback" not in run.stdout, context
    assert run.returncode in (0, 1), context  # a negative code is a signal: -11 is a segfault
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not JSON ({exc})\n{context}") from None
    assert isinstance(report, dict), context
    assert "error" not in report, f"wfctl reported an internal error instead of diagnostics\n{context}"
    assert {"ok", "summary", "diagnostics"} <= set(report), context
    summary, diagnostics = report["summary"], report["diagnostics"]
    assert set(summary) == {"files", "documents", "errors", "warnings"}, context
    assert all(isinstance(summary[k], int) and summary[k] >= 0 for k in summary), context
    assert isinstance(diagnostics, list), context
    for d in diagnostics:
        check_diagnostic(d, run.files)
    errors = sum(1 for d in diagnostics if d["severity"] == "error")
    assert summary["errors"] == errors, context
    assert summary["warnings"] == len(diagnostics) - errors, context
    assert report["ok"] is (errors == 0), context
    assert run.returncode == (0 if report["ok"] else 1), context
    return report


def check_diagnostic(d: Any, files: set[str]) -> None:
    assert isinstance(d, dict), d
    assert set(d) == {"file", "line", "column", "severity", "rule", "message", "hint"}, d
    assert d["rule"] in RULES, d
    assert d["severity"] == RULES[d["rule"]].severity, d
    assert isinstance(d["line"], int) and d["line"] >= 1, d
    assert isinstance(d["column"], int) and d["column"] >= 1, d
    assert isinstance(d["message"], str) and d["message"].strip(), d
    assert isinstance(d["hint"], str) and d["hint"].strip(), d
    assert d["file"] in files, d


def rules_of(report: dict[str, Any], file: str | None = None) -> set[str]:
    return {d["rule"] for d in report["diagnostics"] if file is None or d["file"] == file}


@pytest.mark.parametrize("name", CASES)
def test_bad_input(runner: Runner, name: str) -> None:
    spec = CASES[name]
    run = runner.result(name)
    report = check_report(run)
    found = rules_of(report)
    assert spec.rules <= found, f"expected {sorted(spec.rules)}, got {report['diagnostics']}"
    if spec.any_of:
        assert spec.any_of & found, f"expected one of {sorted(spec.any_of)}, got {report['diagnostics']}"
    if spec.exact:
        assert rules_of(report, BAD) == spec.rules, report["diagnostics"]
    if spec.exit is not None:
        assert run.returncode == spec.exit, report["diagnostics"]
    assert run.peak_kib < PEAK_RSS_KIB, f"wfctl peaked at {run.peak_kib // 1024} MiB"


# --- details of a few cases ----------------------------------------------------------


def test_billion_laughs_stays_small(runner: Runner) -> None:
    run = runner.result("billion-laughs")
    assert run.peak_kib < 256 * 1024, f"wfctl peaked at {run.peak_kib // 1024} MiB on a billion-laughs file"


def test_tab_indentation_hint_names_tabs(runner: Runner) -> None:
    [diagnostic] = check_report(runner.result("tab-indentation"))["diagnostics"]
    assert (diagnostic["line"], diagnostic["column"]) == (4, 1)
    assert "tab" in diagnostic["hint"].lower(), diagnostic


def test_latin1_points_at_the_first_bad_byte(runner: Runner) -> None:
    [diagnostic] = check_report(runner.result("latin-1"))["diagnostics"]
    assert (diagnostic["line"], diagnostic["column"]) == (4, 12)  # "  name: caf" + é


def test_everything_at_once_reports_each_file(runner: Runner) -> None:
    report = check_report(runner.result("everything-at-once"))
    by_file: dict[str, set[str]] = {}
    for d in report["diagnostics"]:
        by_file.setdefault(d["file"], set()).add(d["rule"])
    assert by_file == {"a.yaml": {"WF100"}, "b.yaml": {"WF105"}, "c.yaml": {"WF106"}, "d.yaml": {"WF105"},
                       "e.yaml": {"WF109"}}
    assert report["summary"]["documents"] == 2  # the valid component and workflow still count
