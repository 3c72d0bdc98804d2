"""What git knows about the repo, through gitpython: changed files, and (for
publish) the commit, branch and dirtiness of the work tree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wfctl.errors import USAGE, WfError


def _repo(root: Path):  # type: ignore[no-untyped-def]
    import git  # lazy: gitpython costs ~100 ms to import and most commands never need it

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise WfError(USAGE, f"{root} is not inside a git repository", "run `git init`, or drop the git-only option") from None


def changed_files(root: Path, ref: str) -> list[str]:
    """Files changed between ``ref`` and the work tree (untracked ones included),
    relative to ``root`` with ``/``."""
    import git

    repo = _repo(root)
    try:
        commit = repo.commit(ref)
    except (git.BadName, ValueError):
        raise WfError(USAGE, f"unknown git ref {ref!r}",
                      "use a branch, tag or commit that exists locally (in CI, fetch it first: git fetch origin main)") from None
    top = Path(repo.working_tree_dir or root).resolve()
    names = {item.a_path for item in commit.diff(None)} | {item.b_path for item in commit.diff(None)}
    names |= set(repo.untracked_files)
    out = []
    for name in names:
        if not name:
            continue
        path = (top / name).resolve()
        if path == root or root in path.parents:
            out.append(path.relative_to(root).as_posix())
    return sorted(out)


@dataclass(frozen=True)
class GitState:
    """What a publish records about the commit it deploys."""

    commit: str | None
    branch: str | None
    dirty: bool
    dirty_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"commit": self.commit, "branch": self.branch, "dirty": self.dirty}


def state(root: Path, paths: list[str]) -> GitState:
    """HEAD's commit and branch, and whether the tree is dirty: tracked changes
    anywhere, or untracked files under the configured paths (``.wfctl/`` and
    ignored files never count)."""
    repo = _repo(root)
    try:
        commit = repo.head.commit.hexsha
    except ValueError:
        commit = None  # a repo without commits
    dirty_files = [item.a_path for item in repo.index.diff(None)]
    if commit:
        dirty_files += [item.a_path for item in repo.index.diff("HEAD")]
    top = Path(repo.working_tree_dir or root).resolve()
    prefixes = [_prefix((root / p).resolve().relative_to(top).as_posix()) for p in paths]
    dirty_files += [f for f in repo.untracked_files if _under(f, prefixes)]
    dirty_files = sorted({f for f in dirty_files if not f.startswith(".wfctl/") and "/.wfctl/" not in f})
    return GitState(commit, _branch(repo), bool(dirty_files), tuple(dirty_files))


def _prefix(rel: str) -> str:
    return "" if rel == "." else rel + "/"


def _under(path: str, prefixes: list[str]) -> bool:
    return any(path.startswith(prefix) for prefix in prefixes)


def _branch(repo) -> str | None:  # type: ignore[no-untyped-def]
    """The checked-out branch; in CI's detached checkouts, the branch that was pushed."""
    if not repo.head.is_detached:
        return str(repo.active_branch.name)
    if os.environ.get("GITHUB_REF_TYPE") == "branch":
        return os.environ.get("GITHUB_REF_NAME")
    return None


def is_ancestor(root: Path, commit: str) -> bool | None:
    """Whether ``commit`` is an ancestor of HEAD (or HEAD); None when git does not
    know the commit (a shallow clone)."""
    import git

    repo = _repo(root)
    try:
        repo.commit(commit)
    except (git.BadName, ValueError):
        return None
    return bool(repo.is_ancestor(commit, repo.head.commit))


def publisher(root: Path) -> str:
    """Who is publishing: the CI actor, else the git user, else the OS user."""
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return actor
    try:
        reader = _repo(root).config_reader()
        name = reader.get_value("user", "email", "") or reader.get_value("user", "name", "")
        if name:
            return str(name)
    except (WfError, OSError):
        pass
    import getpass

    return getpass.getuser()


def export_tree(root: Path, ref: str, dest: Path) -> None:
    """Write the files under ``root`` as they were at ``ref`` into ``dest`` (for
    ``plan --against``): the same layout, so the same config resolves them."""
    import git

    repo = _repo(root)
    try:
        tree = repo.commit(ref).tree
    except (git.BadName, ValueError):
        raise WfError(USAGE, f"unknown git ref {ref!r}", "use a branch, tag or commit that exists locally") from None
    top = Path(repo.working_tree_dir or root).resolve()
    inside = _prefix(root.resolve().relative_to(top).as_posix())
    for item in tree.traverse():
        if item.type != "blob" or not item.path.startswith(inside):
            continue
        rel = Path(item.path[len(inside):])
        if ".." in rel.parts or rel.is_absolute():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data_stream.read())
