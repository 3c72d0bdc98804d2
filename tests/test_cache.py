"""The validation cache (``.wfctl/cache/validation.json``): a warm run loads only what
changed, reports exactly what a cold run reports, and never trusts a cache that git tracks."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import git
import pytest
from conftest import BASH_COMPONENT, component, template, wfctl, workflow

from wfctl import analyze as analyze_mod
from wfctl import cache as cache_mod
from wfctl import config as config_mod
from wfctl import schemas
from wfctl import validate as validate_mod
from wfctl.errors import INVALID_CONFIG, USAGE, WfError

CACHE = Path(".wfctl/cache/validation.json")
SQL = component("sql", """
type: bash
inputs: {type: object, properties: {command: {type: string}}, required: [command]}
""")
TEMPLATE = template("nightly", """
parameters: {type: object, properties: {table: {type: string}}, required: [table]}
workflow:
  schedule: {cron: "0 3 * * *", timezone: UTC}
  tasks:
    - {name: load, component: sql, with: {command: "psql -c 'select * from ${{ values.table }}'"}}
""")
BROKEN = workflow("broken", spec="""
tasks:
  - {name: a, component: bash, with: {command: "echo"}, depends_on: [b]}
  - {name: b, component: bash, with: {command: "echo"}, depends_on: [a]}
  - {name: c, component: nope, with: {command: "echo"}}
""")
FILES = {
    "components/bash.yaml": BASH_COMPONENT,
    "components/sql.yaml": SQL,
    "templates/nightly.yaml": TEMPLATE,
    "workflows/uses-bash.yaml": workflow("uses-bash"),
    "workflows/uses-sql.yaml": workflow("uses-sql", spec="tasks:\n"
                                                       "  - {name: q, component: sql, with: {command: 'psql -f q.sql'}}\n"),
    "workflows/templated.yaml": workflow("templated", spec="template: nightly\nvalues: {table: orders}\n"),
    "workflows/broken.yaml": BROKEN,
    "workflows/warned.yaml": workflow("warned", spec="schedule: {cron: '* * * * *', timezone: UTC}\n"
                                                     "tasks:\n  - {name: t, component: bash, with: {command: x}}\n"),
    "notes/other.yaml": "just: some yaml\n",
}


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each file is parsed (fresh analysis or a deferred document's reload)."""
    counts: Counter[str] = Counter()
    real = analyze_mod.load_text

    def counting(rel: str, text: str) -> Any:
        counts[rel] += 1
        return real(rel, text)

    monkeypatch.setattr(analyze_mod, "load_text", counting)
    return counts


def make(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "repo"
    for rel, text in (files or FILES).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(root: Path, **flags: Any) -> validate_mod.Validation:
    return validate_mod.validate(config_mod.load(root, flags))


def outcome(result: validate_mod.Validation) -> tuple[Any, ...]:
    """Everything a run reports: diagnostics with positions, counts, and each workflow's digest."""
    report = result.report
    return (report.diagnostics, report.files, report.documents, result.skipped,
            {name: (w.sha256, w.source_path, w.owner, w.schedule) for name, w in result.workflows.items()})


def test_a_warm_run_reports_what_a_cold_run_does_and_loads_only_what_it_must(tmp_path: Path,
                                                                              loads: Counter[str]) -> None:
    root = make(tmp_path)
    cold = run(root)
    assert {d.rule for d in cold.report.diagnostics} >= {"WF303", "WF400", "WF503"}  # errors and a warning
    assert (root / CACHE).is_file()
    first = dict(loads)
    loads.clear()
    warm = run(root)
    assert outcome(warm) == outcome(cold)
    assert first == {rel: 1 for rel in FILES if rel != "notes/other.yaml"}  # foreign YAML is never parsed
    # Only the workflow with an error is loaded again (its positions come from a fresh parse), and
    # what it looked up: the component it found. Clean workflows come from the cache unparsed.
    assert dict(loads) == {"workflows/broken.yaml": 1, "components/bash.yaml": 1}


def test_a_cached_definition_is_rebuilt_on_demand_and_matches_its_digest(tmp_path: Path, loads: Counter[str]) -> None:
    root = make(tmp_path)
    cold = run(root, cache=False).workflows["templated"]
    run(root)
    loads.clear()
    warm = run(root).workflows["templated"]
    assert "definition" not in vars(warm) and not loads["workflows/templated.yaml"]
    assert warm.definition == cold.definition and warm.canonical == cold.canonical
    assert loads["workflows/templated.yaml"] == 1 and loads["templates/nightly.yaml"] == 1


@pytest.mark.parametrize(("changed", "reresolved"), [
    ("components/sql.yaml", {"uses-sql", "templated"}),  # direct use, and through the template
    ("templates/nightly.yaml", {"templated"}),
    ("components/bash.yaml", {"uses-bash", "warned"}),
])
def test_a_changed_dependency_re_resolves_exactly_its_users(tmp_path: Path, loads: Counter[str], changed: str,
                                                            reresolved: set[str]) -> None:
    root = make(tmp_path)
    run(root)
    path = root / changed
    path.write_text(path.read_text().replace("type: bash", "type: bash\n  description: edited", 1)
                    .replace("timezone: UTC", "timezone: Europe/Paris"))
    loads.clear()
    warm = run(root)
    loaded = dict(loads)
    assert outcome(warm) == outcome(run(root, cache=False))
    loaded_workflows = {w.name for w in warm.workflows.values() if w.source_path in loaded}
    assert loaded_workflows == reresolved and loaded[changed] == 1


def test_moving_a_file_or_changing_one_byte_is_a_miss(tmp_path: Path, loads: Counter[str]) -> None:
    root = make(tmp_path)
    run(root)
    (root / "workflows/uses-bash.yaml").rename(root / "workflows/moved.yaml")
    (root / "workflows/uses-sql.yaml").write_text(FILES["workflows/uses-sql.yaml"].replace("q.sql", "r.sql"))
    loads.clear()
    warm = run(root)
    assert loads["workflows/moved.yaml"] == 1 and loads["workflows/uses-sql.yaml"] == 1
    assert outcome(warm) == outcome(run(root, cache=False))
    assert warm.workflows["uses-bash"].source_path == "workflows/moved.yaml"


def test_a_deleted_file_leaves_the_cache(tmp_path: Path) -> None:
    root = make(tmp_path)
    run(root)
    (root / "workflows/warned.yaml").unlink()
    run(root)
    cached = json.loads((root / CACHE).read_text())
    assert "workflows/warned.yaml" not in cached["files"] and "workflows/uses-bash.yaml" in cached["files"]


def forge(root: Path, rel: str, text: str) -> None:
    """Change ``rel`` and make the cache claim its new bytes are the old, clean ones."""
    cached = json.loads((root / CACHE).read_text())
    (root / rel).write_text(text)
    old, new = cached["files"][rel]["digest"], hashlib.sha256(text.encode()).hexdigest()
    cached["files"][rel]["digest"] = new
    cached["resolved"] = {key.replace(old, new): entry for key, entry in cached["resolved"].items()}
    (root / CACHE).write_text(json.dumps(cached))


def test_a_cache_committed_to_git_is_never_trusted(tmp_path: Path) -> None:
    root = make(tmp_path)
    repo = git.Repo.init(root)
    assert run(root).report.errors
    (root / "workflows/broken.yaml").unlink()
    assert not run(root).report.errors
    bad = workflow("evil", spec="tasks:\n  - {name: t, component: missing}\n")
    forge(root, "workflows/uses-bash.yaml", bad)
    assert not run(root).report.errors  # an untracked cache is ours: it is believed (that is its job)
    forge(root, "workflows/uses-bash.yaml", bad)
    repo.index.add([str(CACHE)])  # what a pull request could do (git add -f .wfctl/)
    rules = {d.rule for d in run(root).report.diagnostics}
    assert "WF400" in rules


@pytest.mark.parametrize("garbage", [
    b"", b"{not json", b"[]", b'{"fingerprint": "x", "files": {}}',
    b'{"format": 1, "fingerprint": "%s", "files": [], "resolved": 7}',
    b'{"format": 1, "fingerprint": "%s", "files": {"workflows/uses-bash.yaml": {"digest": "d", "wfctl": true, '
    b'"diagnostics": [], "documents": "x"}}, "resolved": {}}',
    b'{"format": 1, "fingerprint": "%s", "files": {}, "resolved": {"k": {"lookups": [["Component"]], '
    b'"sha256": "s", "owner": "o", "schedule": null}}}',
])
def test_a_corrupt_or_foreign_cache_is_a_cold_run(tmp_path: Path, loads: Counter[str], garbage: bytes) -> None:
    root = make(tmp_path)
    expected = outcome(run(root, cache=False))
    (root / CACHE).parent.mkdir(parents=True)
    (root / CACHE).write_bytes(garbage.replace(b"%s", cache_mod.fingerprint().encode()))
    loads.clear()
    assert outcome(run(root)) == expected
    assert sum(loads.values()) == len(FILES) - 1
    assert json.loads((root / CACHE).read_text())["fingerprint"] == cache_mod.fingerprint()  # rewritten


@pytest.mark.parametrize(("section", "field", "value"), [
    ("files", "documents", "x"), ("files", "diagnostics", [[1, 2]]), ("resolved", "lookups", [["Component"]]),
    ("resolved", "sha256", None),
])
def test_a_cache_with_a_malformed_entry_is_a_cold_run(tmp_path: Path, loads: Counter[str], section: str, field: str,
                                                      value: Any) -> None:
    root = make(tmp_path)
    expected = outcome(run(root))
    cached = json.loads((root / CACHE).read_text())
    for entry in cached[section].values():  # the digests still match: without the schema check, this would crash
        entry[field] = value
    (root / CACHE).write_text(json.dumps(cached))
    loads.clear()
    assert outcome(run(root)) == expected
    assert sum(loads.values()) == len(FILES) - 1


def test_a_new_fingerprint_discards_every_entry(tmp_path: Path, loads: Counter[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path)
    run(root)
    monkeypatch.setattr(cache_mod, "fingerprint", lambda: "another wfctl")
    loads.clear()
    run(root)
    assert sum(loads.values()) == len(FILES) - 1


def test_the_fingerprint_follows_the_schemas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = cache_mod.fingerprint()
    edited = tmp_path / "schemas"
    edited.mkdir()
    for path in schemas.schema_dir().iterdir():
        (edited / path.name).write_bytes(path.read_bytes())
    (edited / "workflow.schema.json").write_bytes((edited / "workflow.schema.json").read_bytes() + b" ")
    monkeypatch.setattr(schemas, "schema_dir", lambda: edited)
    cache_mod.fingerprint.cache_clear()
    try:
        assert cache_mod.fingerprint() != before
    finally:
        cache_mod.fingerprint.cache_clear()


@pytest.mark.parametrize("how", ["flag", "env", "file"])
def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    files = dict(FILES)
    if how == "file":
        files["wfctl.yaml"] = "cache: false\n"
    root = make(tmp_path, files)
    if how == "env":
        monkeypatch.setenv("WFCTL_CACHE", "off")
    args = ["--no-cache"] if how == "flag" else []
    result = wfctl("--repo", str(root), *args, "validate", "-o", "json")
    assert result.exit_code == 1 and json.loads(result.stdout)["summary"]["errors"]
    assert not (root / ".wfctl").exists()


def test_a_cache_setting_that_is_not_a_boolean_is_wf8xx(tmp_path: Path) -> None:
    root = make(tmp_path, {**FILES, "wfctl.yaml": "cache: sometimes\n"})
    with pytest.raises(WfError) as info:
        config_mod.load(root)
    assert info.value.code == INVALID_CONFIG and "cache: false" in info.value.hint


def test_an_unwritable_cache_folder_does_not_fail_the_run(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / ".wfctl").mkdir()
    (root / ".wfctl" / "cache").write_text("a file where the folder should be")
    assert outcome(run(root)) == outcome(run(root, cache=False))


def test_a_file_that_changes_mid_run_is_a_clear_error(tmp_path: Path) -> None:
    root = make(tmp_path)
    rel = "workflows/uses-bash.yaml"
    digest = hashlib.sha256((root / rel).read_bytes()).hexdigest()
    assert analyze_mod.reload(root, rel, digest)[0].data["metadata"]["name"] == "uses-bash"
    (root / rel).write_text(workflow("edited"))
    with pytest.raises(WfError) as info:
        analyze_mod.reload(root, rel, digest)
    assert info.value.code == USAGE and rel in info.value.message and "again" in info.value.hint


def test_symlinks_are_followed_only_inside_the_repository(tmp_path: Path) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text(workflow("outside"))
    root = make(tmp_path, {"components/bash.yaml": BASH_COMPONENT, "workflows/real.yaml": workflow("real")})
    (root / "workflows" / "link-out.yaml").symlink_to(outside)
    (root / "workflows" / "link-in.yaml").symlink_to(root / "workflows" / "real.yaml")
    assert validate_mod.discover(config_mod.load(root)) == ["components/bash.yaml", "workflows/real.yaml"]
    assert set(run(root).workflows) == {"real"}
