"""Validation of many changed files in forked worker processes.

Workers analyse *and* resolve, and send back summaries (diagnostics, digests,
canonical bytes), never parsed documents: shipping documents with their source
maps (about 24 KB pickled per file) cost as much as parsing them, and left
resolution to run serially in the parent. Their documents come back deferred and
load from their files if a position or more than the digest is needed.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from wfctl.analyze import FileAnalysis, analyze_file, defer
from wfctl.cache import ValidationCache
from wfctl.model import COMPONENT, TEMPLATE, WORKFLOW
from wfctl.resolve import Catalog, Settled, index, settle


def analyze(root: Path, files: list[str], known: dict[str, str], cache: ValidationCache,
            workers: int) -> tuple[list[FileAnalysis], dict[tuple[str, int], Settled], Catalog]:
    """Every file's analysis, in ``files`` order, and the workflows the workers resolved.

    Resolution needs the catalog first, so files that may hold a component or template
    (a byte pre-scan) are analysed here, before the fork; the workers inherit the catalog,
    which is returned so the caller can check it was the whole repo's. Every other
    document comes back deferred: it loads from its file if something needs it (a
    diagnostic's position, a definition to publish)."""
    global _SHARED
    early = [rel for rel in files if _may_hold_catalog(root, rel)]
    analyses = {rel: cache.adopt(analyze_file(root, rel, known[rel])) for rel in early}
    catalog = index([d for a in analyses.values() for d in a.documents if d.kind in CATALOG_KINDS])[0]
    rest = [rel for rel in files if rel not in analyses]
    settled: dict[tuple[str, int], Settled] = {}
    _SHARED = (cache, catalog)
    try:
        with _pool(workers) as pool:
            chunk = max(1, math.ceil(len(rest) / (workers * 8)))
            for analysis, found in pool.map(_analyze_and_settle, [root] * len(rest), rest,
                                            [known[rel] for rel in rest], chunksize=chunk):
                if not analysis.unchanged:
                    analysis = replace(analysis, documents=[cache.reloader.defer(d) for d in analysis.documents])
                analyses[analysis.file] = cache.adopt(analysis)
                settled.update(found)
    finally:
        _SHARED = None
    return [analyses[rel] for rel in files], settled, catalog


_SHARED: tuple[ValidationCache, Catalog] | None = None  # set in the parent just before the workers fork
CATALOG_KINDS = (COMPONENT, TEMPLATE)
FORK = "fork" in multiprocessing.get_all_start_methods()  # elsewhere, workers could not inherit the catalog


def _may_hold_catalog(root: Path, rel: str) -> bool:
    """Could this file hold a Component or a WorkflowTemplate? False positives only cost time;
    a miss is caught afterwards, when the whole repo's catalog is known."""
    try:
        data = (root / rel).read_bytes()
    except OSError:
        return False
    return b"Component" in data or b"WorkflowTemplate" in data


def _analyze_and_settle(root: Path, rel: str, known: str) -> tuple[FileAnalysis, dict[tuple[str, int], Settled]]:
    """In a worker: one file's analysis (its documents stripped for the trip back) and
    the resolution of its workflows against the inherited catalog."""
    assert _SHARED is not None
    cache, catalog = _SHARED
    analysis = analyze_file(root, rel, known)
    local = cache.restore(analysis) if analysis.unchanged else analysis
    settled = {}
    for doc in local.documents:
        if doc.kind == WORKFLOW:
            settled[(rel, doc.index)] = cache.recall(doc, catalog) or settle(doc, catalog)[1]
    if analysis.unchanged:
        return analysis, settled
    return replace(analysis, documents=[defer(d, None) for d in analysis.documents]), settled


@contextmanager
def _pool(workers: int) -> Iterator[Executor]:
    """Forked workers: no re-import, and they inherit ``_SHARED``."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=gc.disable) as pool:
        yield pool
