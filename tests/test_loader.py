"""The position-keeping YAML loader (wfctl.loader): source maps, merges, YAML 1.1
scalars, dates, multi-document files, line endings, BOMs and empty documents."""

from __future__ import annotations

import pytest
from conftest import pos_of, where, workflow

from wfctl import config, validate
from wfctl.loader import decode, load_text

SOURCE = """\
name: demo
owner: "data-team"
tasks:
  - name: fetch
    with: {url: "https://x", retries: [1, 2]}
  - plain item
nested:
  deeper:
    leaf: 42
"""


def load_one(text: str):
    loaded = load_text("f.yaml", text)
    assert loaded.diagnostics == []
    [doc] = loaded.documents
    return doc


# --- source map ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "key", "value"), [
    pytest.param(("name",), "name:", "demo", id="top-level"),
    pytest.param(("owner",), "owner:", '"data-team"', id="quoted-value"),
    pytest.param(("tasks",), "tasks:", "- name", id="block-sequence"),
    pytest.param(("tasks", 0, "name"), "name: fetch", "fetch", id="key-in-sequence-item"),
    pytest.param(("tasks", 0, "with"), "with:", "{url", id="flow-mapping"),
    pytest.param(("tasks", 0, "with", "url"), "url:", '"https', id="key-in-flow-mapping"),
    pytest.param(("tasks", 0, "with", "retries"), "retries:", "[1", id="flow-sequence"),
    pytest.param(("nested", "deeper", "leaf"), "leaf:", "42", id="nested-block"),
])
def test_source_map_keys_and_values(path, key: str, value: str) -> None:
    sm = load_one(SOURCE).sourcemap
    assert sm.key(path) == pos_of(SOURCE, key)
    assert sm.value(path) == pos_of(SOURCE, value)


@pytest.mark.parametrize(("path", "needle"), [
    pytest.param(("tasks", 0), "name: fetch", id="mapping-item"),
    pytest.param(("tasks", 1), "plain item", id="scalar-item"),
    pytest.param(("tasks", 0, "with", "retries", 1), "2]", id="flow-sequence-item"),
])
def test_sequence_items_are_located(path, needle: str) -> None:
    sm = load_one(SOURCE).sourcemap
    assert sm.value(path) == pos_of(SOURCE, needle)
    assert sm.key(path) == pos_of(SOURCE, needle)  # an item has no key: the item itself


def test_unknown_paths_fall_back_to_the_nearest_ancestor() -> None:
    sm = load_one(SOURCE).sourcemap
    assert sm.value(("tasks", 0, "with", "nope", 3)) == pos_of(SOURCE, "{url")
    assert sm.key(("tasks", 0, "with", "nope")) == pos_of(SOURCE, "with:")
    assert sm.value(("missing",)) == (1, 1)


def test_data_is_plain_json_like() -> None:
    assert load_one(SOURCE).data == {
        "name": "demo",
        "owner": "data-team",
        "tasks": [{"name": "fetch", "with": {"url": "https://x", "retries": [1, 2]}}, "plain item"],
        "nested": {"deeper": {"leaf": 42}},
    }


# --- merge keys -------------------------------------------------------------------------


MERGES = """\
base: &base {pool: shared, priority: 3, retries: 1}
other: &other {pool: other, timeout: 60}
before:
  <<: *base
  priority: 5
after:
  priority: 7
  <<: *base
many:
  <<: [*other, *base]
"""


def test_merge_keys_explicit_beats_merged() -> None:
    data = load_one(MERGES).data
    assert data["before"] == {"pool": "shared", "priority": 5, "retries": 1}
    assert data["after"] == {"pool": "shared", "priority": 7, "retries": 1}


def test_merge_list_earlier_sources_win() -> None:
    assert load_one(MERGES).data["many"] == {"pool": "other", "timeout": 60, "priority": 3, "retries": 1}


def test_explicit_key_of_a_merged_mapping_is_located_where_it_is_written() -> None:
    sm = load_one(MERGES).sourcemap
    assert sm.value(("before", "priority")) == pos_of(MERGES, "5")
    assert sm.key(("after", "priority")) == pos_of(MERGES, "priority: 7")


def test_merged_keys_are_not_duplicates_but_repeated_explicit_keys_are() -> None:
    text = MERGES + "dup:\n  <<: *base\n  priority: 1\n  pool: mine\n  priority: 2\n"
    loaded = load_text("f.yaml", text)
    assert where(loaded.diagnostics) == [("f.yaml", *pos_of(text, "priority: 2"), "WF101", "error")]
    assert loaded.diagnostics[0].message == f"duplicate key 'priority' (first defined at line {pos_of(text, 'priority: 1')[0]})"
    assert loaded.documents[0].data["dup"] == {"pool": "mine", "priority": 1, "retries": 1}


def test_merge_of_a_scalar_is_an_error_not_a_crash() -> None:
    loaded = load_text("f.yaml", "a: &a 1\nb:\n  <<: *a\n")
    assert [d.rule for d in loaded.diagnostics] == ["WF100"]


# --- scalars: keys as written, YAML 1.1 values with their raw text ------------------------


def test_keys_stay_as_written() -> None:
    data = load_one("on: push\noff: 1\nyes: y\n1: one\n").data
    assert data == {"on": "push", "off": 1, "yes": "y", "1": "one"}
    assert all(isinstance(key, str) for key in data)


@pytest.mark.parametrize(("text", "value"), [
    ("on", True), ("no", False), ("012", 10), ("1:30", 90), ("0x1F", 31), ("~", None), (".inf", float("inf")),
])
def test_yaml_11_values_keep_their_raw_text(text: str, value: object) -> None:
    doc = load_one(f"key: {text}\n")
    assert doc.data["key"] == value
    assert doc.sourcemap.raw[("key",)] == text


@pytest.mark.parametrize("text", ['"on"', "'012'", "!!str 012", "plain words"])
def test_strings_have_no_raw_entry(text: str) -> None:
    doc = load_one(f"key: {text}\n")
    assert isinstance(doc.data["key"], str)
    assert ("key",) not in doc.sourcemap.raw


@pytest.mark.parametrize(("text", "value"), [
    ("2025-01-01", "2025-01-01"),
    ("2025-12-31T06:30:00+09:00", "2025-12-31T06:30:00+09:00"),
    ('"2025-01-01"', "2025-01-01"),
])
def test_dates_become_iso_strings(text: str, value: str) -> None:
    assert load_one(f"start_date: {text}\n").data == {"start_date": value}


def test_dates_in_a_workflow_reach_the_resolved_definition_as_strings(make_repo, run_validate) -> None:
    doc = workflow(spec='schedule: {cron: "@daily", start_date: 2025-01-01, end_date: 2025-12-31}\n'
                        'tasks:\n  - {name: hello, component: bash, with: {command: "echo"}}\n')
    root = make_repo({"workflows/demo.yaml": doc}, bash=True)
    assert run_validate(root).diagnostics == []
    schedule = validate.validate(config.load(root)).workflows["demo"].definition["spec"]["schedule"]
    assert (schedule["start_date"], schedule["end_date"]) == ("2025-01-01", "2025-12-31")


# --- documents ----------------------------------------------------------------------------


def test_second_document_positions_are_file_positions() -> None:
    text = "a: 1\nb: [x]\n---\n# comment\nc:\n  d: {e: 5}\n"
    loaded = load_text("f.yaml", text)
    assert loaded.diagnostics == []
    first, second = loaded.documents
    assert (first.index, second.index) == (0, 1)
    assert second.data == {"c": {"d": {"e": 5}}}
    assert second.sourcemap.key(("c",)) == pos_of(text, "c:")
    assert second.sourcemap.value(("c", "d")) == pos_of(text, "{e")
    assert second.sourcemap.value(("c", "d", "e")) == pos_of(text, "5")


def test_diagnostics_in_a_second_document(make_repo, run_validate) -> None:
    text = workflow("first") + "---\n" + workflow("second", metadata="retires: 1")
    report = run_validate(make_repo({"workflows/two.yaml": text}, bash=True))
    assert where(report.diagnostics) == [("workflows/two.yaml", *pos_of(text, "retires"), "WF200", "error")]
    assert report.documents == 3


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "---\n---\n...\n"])
def test_empty_documents_load_without_diagnostics(text: str) -> None:
    loaded = load_text("f.yaml", text)
    assert loaded.diagnostics == []
    assert all(doc.data is None for doc in loaded.documents)


def test_empty_documents_next_to_a_workflow_are_ignored(make_repo, run_validate) -> None:
    text = "---\n" + workflow() + "---\n---\n"
    report = run_validate(make_repo({"workflows/demo.yaml": text}, bash=True))
    assert report.diagnostics == []
    assert report.documents == 2


def test_an_empty_file_is_no_wfctl_file(make_repo, run_validate) -> None:
    report = run_validate(make_repo({"workflows/empty.yaml": "", "workflows/demo.yaml": workflow()}, bash=True))
    assert report.diagnostics == []
    assert report.files == 2


# --- line endings and BOM -------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("bom", ["", "\ufeff"], ids=["no-bom", "bom"])
def test_positions_ignore_crlf_and_bom(newline: str, bom: str, make_repo, run_validate) -> None:
    text = workflow(metadata="retires: 1",
                    spec='tasks:\n  - {name: hello, component: bash, with: {command: "echo", shell: zsh}}\n')
    raw = (bom + text.replace("\n", newline)).encode("utf-8")
    report = run_validate(make_repo({"workflows/demo.yaml": raw}, bash=True))
    assert where(report.diagnostics) == [
        ("workflows/demo.yaml", *pos_of(text, "retires"), "WF200", "error"),
        ("workflows/demo.yaml", *pos_of(text, "shell"), "WF403", "error"),
    ]


def test_crlf_values_have_no_carriage_returns() -> None:
    doc = load_one("a: one\r\nb: |\r\n  two\r\n  three\r\n")
    assert doc.data == {"a": "one", "b": "two\nthree\n"}


def test_bom_is_stripped_by_decode() -> None:
    text, problems = decode("f.yaml", b"\xef\xbb\xbfa: 1\n")
    assert (text, problems) == ("a: 1\n", [])
    assert load_one(text).sourcemap.key(("a",)) == (1, 1)


# --- robustness -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "rule"), [
    pytest.param("? [a]\n: 1\n", "WF109", id="complex-key"),
    pytest.param("a: !!set {x}\n", "WF109", id="set-tag"),
    pytest.param("a: !!int nope\n", "WF109", id="bad-int"),
    pytest.param("a: *missing\n", "WF100", id="unknown-alias"),
    pytest.param("a: [1, 2\n", "WF100", id="unclosed-flow"),
    pytest.param("a: 1\n\x07b: 2\n", "WF100", id="control-character"),
])
def test_bad_yaml_becomes_a_diagnostic_not_an_exception(text: str, rule: str) -> None:
    loaded = load_text("f.yaml", text)
    assert [d.rule for d in loaded.diagnostics] == [rule]
    assert all(d.line >= 1 and d.column >= 1 for d in loaded.diagnostics)
