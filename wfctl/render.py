"""``wfctl render``: the repo's workflows as Airflow DAG files in a local folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from wfctl.airflow_render import HEADER_MARK, dag_file_name, render_dag
from wfctl.config import Config
from wfctl.deploy import validated


def render_repo(config: Config, out: Path) -> list[Path]:
    """Render every workflow (all before writing any, so an error leaves nothing
    half-done), write each file atomically, and remove files of workflows that are
    gone (only files wfctl generated)."""
    workflows = validated(config).workflows
    texts = {dag_file_name(name): render_dag(w.definition, source="CODE", version=None, sha256=w.sha256)
             for name, w in sorted(workflows.items())}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in texts.items():
        written.append(_write_atomic(out / file_name, text))
    for stale in sorted(out.glob("*.py")):
        if stale.name not in texts and HEADER_MARK in stale.read_text("utf-8", errors="replace")[:2000]:
            stale.unlink()
    return written


def _write_atomic(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
