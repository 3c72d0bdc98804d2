"""``wfctl validate``: find files, analyse them (in parallel when there are
many), resolve across documents, and report every problem in one run.

:func:`validate` is also the first step of plan, publish and render: they use
the :class:`Validation`'s resolved workflows only when it has no errors.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wfctl import rules
from wfctl import workers as workers_mod
from wfctl.analyze import analyze_file
from wfctl.cache import ValidationCache
from wfctl.config import CONFIG_FILE, Config
from wfctl.diagnostics import Diagnostic, Report
from wfctl.errors import USAGE, WfError
from wfctl.model import WORKFLOW, Document, ResolvedWorkflow
from wfctl.resolve import Catalog, Resolution, resolve

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
    cache = ValidationCache.open(config.root, enabled=config.values["cache"])
    known = {rel: cache.known(rel) for rel in files}
    workers = jobs or min(os.cpu_count() or 1, 8)
    changed = sum(1 for rel in files if not known[rel])  # a cached file costs a read and a hash, no more
    if workers > 1 and changed >= PARALLEL_THRESHOLD and workers_mod.FORK:
        analyses, settled, used = workers_mod.analyze(config.root, files, known, cache, workers)
    else:
        analyses = [cache.adopt(analyze_file(config.root, rel, known[rel])) for rel in files]
        settled, used = {}, None
    documents = [doc for a in analyses for doc in a.documents if keep is None or keep(doc)]
    resolution = resolve(documents, cache, settled)
    if used is not None and _identities(used) != _identities(resolution.catalog):
        resolution = resolve(documents, cache)  # the pre-scan missed a catalog document: resolve here, correctly
    cache.save()
    diagnostics = [d for a in analyses for d in a.diagnostics] + resolution.diagnostics
    ours = [a for a in analyses if a.wfctl]
    if focus is not None:
        keep_files = related_files(set(focus), documents) if related else set(focus)
        diagnostics = [d for d in diagnostics if d.file in keep_files]
        ours = [a for a in ours if a.file in keep_files]
    report = Report(sorted(set(diagnostics)), files=len(ours), documents=sum(len(a.documents) for a in ours))
    return Validation(report, resolution, [a.file for a in analyses if not a.wfctl])


def _identities(catalog: Catalog) -> dict[str, dict[str, tuple[str, int]]]:
    """Which document holds each component and template name."""
    return {kind: {name: (d.file, d.index) for name, d in catalog.by_kind[kind].items()}
            for kind in workers_mod.CATALOG_KINDS}


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
        found.update(_walk(root, (root / rel).resolve()))
    found.discard(CONFIG_FILE)
    return sorted(found)


def _walk(root: Path, base: Path) -> Iterator[str]:
    """Repo-relative YAML files under ``base`` (resolved, inside ``root``). A symlink
    counts as the file it points to, and only if that lies inside the repository: a
    pull request must not get wfctl to read (and quote) files from elsewhere."""
    if not base.is_dir():
        if base.is_file():
            yield base.relative_to(root).as_posix()
        return
    folders = [(base, base.relative_to(root).as_posix())]
    while folders:
        folder, prefix = folders.pop()
        prefix = "" if prefix == "." else prefix + "/"
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable folder: nothing to validate there
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                if entry.name.endswith(SUFFIXES):
                    yield from _link_target(root, Path(entry.path))
            elif entry.is_dir():
                folders.append((Path(entry.path), prefix + entry.name))
            elif entry.name.endswith(SUFFIXES):
                yield prefix + entry.name


def _link_target(root: Path, link: Path) -> Iterator[str]:
    target = link.resolve()
    if root in target.parents and target.is_file():
        yield target.relative_to(root).as_posix()


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
        out += _walk(root, resolved)
    return out


def related_files(focus: set[str], documents: list[Document]) -> set[str]:
    """Focus files plus the files of documents they reference or that reference them."""
    by_name = {(d.kind, d.name): d.file for d in documents if d.name}
    edges: list[tuple[str, str]] = []
    for doc in documents:
        for kind, name in doc.references:
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
