"""``wfctl validate``: find files, analyse them (in parallel when there are
many), resolve across documents, and report every problem in one run.

:func:`validate` is also the first step of plan, publish and render: they use
the :class:`Validation`'s resolved workflows only when it has no errors.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wfctl import rules
from wfctl.analyze import FileAnalysis, analyze_file
from wfctl.config import CONFIG_FILE, Config
from wfctl.diagnostics import Diagnostic, Report
from wfctl.errors import USAGE, WfError
from wfctl.model import WORKFLOW, Document, ResolvedWorkflow
from wfctl.resolve import Resolution, resolve

PARALLEL_THRESHOLD = 200
MAX_REPO_BYTES = 2 * 1024**3  # of YAML under the configured paths: beyond it, nothing is loaded
SUFFIXES = (".yaml", ".yml")


@dataclass
class Validation:
    report: Report
    resolution: Resolution
    skipped: list[str] = field(default_factory=list)

    @property
    def workflows(self) -> dict[str, ResolvedWorkflow]:
        return self.resolution.workflows


def validate(config: Config, focus: Iterable[str] | None = None, jobs: int | None = None,
             related: bool = False) -> Validation:
    """Validate the repo; with ``focus`` (repo-relative files), report only on those
    files, and with ``related`` also on the documents they reference or that
    reference them (``--changed-since``)."""
    return _run(config, discover(config), focus, jobs, related=related)


def validate_files(config: Config, files: list[str]) -> Validation:
    """For ``register``: the workflows of ``files`` (which may lie outside the repo),
    resolved against the repo's components and templates but not its workflows."""
    wanted = set(files)
    repo_files = [f for f in discover(config) if f not in wanted]
    return _run(config, [*repo_files, *files], wanted, None, related=True,
                keep=lambda doc: doc.kind != WORKFLOW or doc.file in wanted)


def _run(config: Config, files: list[str], focus: Iterable[str] | None, jobs: int | None, related: bool,
         keep: Callable[[Document], bool] | None = None) -> Validation:
    with gc_paused():
        return _run_unpaused(config, files, focus, jobs, related, keep)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Loading allocates millions of short-lived, acyclic objects (YAML nodes) while
    keeping every document alive; the cyclic collector would rescan the survivors
    again and again (~30% of the time) for nothing. Reference counting still frees
    them. The survivors are frozen before the collector comes back, or its first
    pass would scan them all once more (seconds on a large repo)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def _run_unpaused(config: Config, files: list[str], focus: Iterable[str] | None, jobs: int | None, related: bool,
                  keep: Callable[[Document], bool] | None) -> Validation:
    oversize = _check_total_size(config.root, files)
    if oversize:
        return Validation(Report([oversize], files=len(files), documents=0), resolve([]))
    workers = jobs or min(os.cpu_count() or 1, 8)
    with _pool(workers if len(files) >= PARALLEL_THRESHOLD else 1) as pool:
        analyses = analyze_all(config.root, files, pool, workers)
        documents = [doc for a in analyses for doc in a.documents if keep is None or keep(doc)]
    resolution = resolve(documents)
    diagnostics = [d for a in analyses for d in a.diagnostics] + resolution.diagnostics
    ours = [a for a in analyses if a.wfctl]
    if focus is not None:
        keep_files = related_files(set(focus), documents) if related else set(focus)
        diagnostics = [d for d in diagnostics if d.file in keep_files]
        ours = [a for a in ours if a.file in keep_files]
    report = Report(sorted(set(diagnostics)), files=len(ours), documents=sum(len(a.documents) for a in ours))
    return Validation(report, resolution, [a.file for a in analyses if not a.wfctl])


def _check_total_size(root: Path, files: list[str]) -> Diagnostic | None:
    """WF110: refuse a repo whose YAML adds up past the limit before reading any of it
    (a runaway generator or a mis-set ``paths:`` must not exhaust memory)."""
    total = 0
    for rel in files:
        try:
            total += (root / rel).stat().st_size
        except OSError:
            continue  # reported when the file is read
        if total > MAX_REPO_BYTES:
            return rules.REPO_TOO_LARGE.at(
                rel, (1, 1), f"the YAML files under the configured paths exceed {MAX_REPO_BYTES:,} bytes in total "
                f"(reached at this file)", "narrow `paths:` in wfctl.yaml to the folders that hold workflows, "
                "or split the repository")
    return None


def discover(config: Config) -> list[str]:
    """Every ``*.yaml``/``*.yml`` under the configured paths, repo-relative, sorted;
    dot-folders and the root ``wfctl.yaml`` are skipped."""
    root = config.root.resolve()
    found: set[str] = set()
    for rel in config.values["paths"]:
        for path in _walk(root / rel):
            found.add(path.relative_to(root).as_posix())
    found.discard(CONFIG_FILE)
    return sorted(found)


def _walk(base: Path) -> Iterator[Path]:
    if base.is_file():
        yield base.resolve()
        return
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.endswith(SUFFIXES) and not name.startswith("."):
                yield Path(dirpath, name).resolve()


def focus_paths(config: Config, paths: Iterable[Path]) -> list[str]:
    """Command-line paths as repo-relative files; a path outside the repo is a usage error."""
    root = config.root.resolve()
    out: list[str] = []
    for path in paths:
        resolved = path.resolve()
        if resolved != root and root not in resolved.parents:
            raise WfError(USAGE, f"{path} is outside the repository {root}", "pass paths inside --repo")
        if not resolved.exists():
            raise WfError(USAGE, f"{path} does not exist", "pass existing files or folders")
        out += [p.relative_to(root).as_posix() for p in _walk(resolved)]
    return out


@contextmanager
def _pool(workers: int) -> Iterator[Executor | None]:
    """A process pool once there are enough files to pay for one (fork where available:
    no re-import per worker); None means work in-line."""
    if workers <= 1:
        yield None
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=gc.disable) as pool:
        yield pool


def analyze_all(root: Path, files: list[str], pool: Executor | None = None, workers: int = 1) -> list[FileAnalysis]:
    """Per-file work, in the pool when there is one."""
    if pool is None:
        return [analyze_file(root, rel) for rel in files]
    chunk = max(1, math.ceil(len(files) / (workers * 8)))
    return list(pool.map(analyze_file, [root] * len(files), files, chunksize=chunk))


def related_files(focus: set[str], documents: list[Document]) -> set[str]:
    """Focus files plus the files of documents they reference or that reference them."""
    by_name = {(d.kind, d.name): d.file for d in documents if d.name}
    edges: list[tuple[str, str]] = []
    for doc in documents:
        for kind, name in references(doc):
            target = by_name.get((kind, name))
            if target:
                edges.append((doc.file, target))
    keep = set(focus)
    for source, target in edges:
        if source in focus:
            keep.add(target)
        if target in focus:
            keep.add(source)
    return keep


def _list(value: object) -> list[object]:
    """A list from a document that may hold anything where a list belongs."""
    return list(value) if isinstance(value, list) else []


def references(doc: Document) -> Iterator[tuple[str, str]]:
    """(kind, name) of every component and template a document uses."""
    spec = doc.spec
    template = spec.get("template")
    if isinstance(template, str):
        yield "WorkflowTemplate", template
    body = spec.get("workflow") if doc.kind == "WorkflowTemplate" else spec
    if not isinstance(body, dict):
        return
    tasks = _list(body.get("tasks"))
    for group in _list(body.get("groups")):
        if isinstance(group, dict):
            tasks += _list(group.get("tasks"))
    for task in tasks:
        if isinstance(task, dict) and isinstance(task.get("component"), str):
            yield "Component", task["component"]

