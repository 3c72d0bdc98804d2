"""What git knows about the repo, through gitpython: changed files, and (for
publish) the commit, branch and dirtiness of the work tree."""

from __future__ import annotations

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
