"""Tests for wfctl.formats: every output format, rendered from hand-built reports."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import jsonschema
import pytest

import wfctl
from wfctl import formats
from wfctl.diagnostics import Diagnostic, Report
from wfctl.formats import FORMATS, render, step_summary
from wfctl.rules import RULES

WORKFLOW = "name: a\ntasks:\n  - name: x\n    depends_on: [b]\n"
TABBED = "name: a\ntasks:\n\t- name: x\n"


def diag(file: str = "workflows/a.yaml", line: int = 4, column: int = 17, severity: str = "error",
         rule: str = "WF303", message: str = "cycle a -> b -> a", hint: str = "break the cycle") -> Diagnostic:
    return Diagnostic(file, line, column, severity, rule, message, hint)  # type: ignore[arg-type]


def report(*diagnostics: Diagnostic, files: int = 2, documents: int = 3) -> Report:
    return Report(diagnostics=list(diagnostics), files=files, documents=documents)


def write(root: Path, rel: str, content: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))


def text(rep: Report, root: Path, **kwargs: bool) -> str:
    return render(rep, "text", repo_root=root, **kwargs)


def block_of(output: str, header_start: str) -> list[str]:
    """The lines of the text block whose first line starts with ``header_start``."""
    for block in output.split("\n\n"):
        if block.startswith(header_start):
            return block.split("\n")
    raise AssertionError(f"no block for {header_start!r} in:\n{output}")


# --- text ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_text_shows_location_rule_source_caret_and_hint(tmp_path: Path, newline: str) -> None:
    write(tmp_path, "workflows/a.yaml", WORKFLOW.replace("\n", newline))
    out = text(report(diag()), tmp_path)
    assert block_of(out, "workflows/a.yaml") == [
        "workflows/a.yaml:4:17: error WF303 [dependency-cycle]: cycle a -> b -> a",
        "        depends_on: [b]",
        "                    ^",
        "  hint: break the cycle",
    ]


def test_text_caret_keeps_tabs_so_it_aligns(tmp_path: Path) -> None:
    write(tmp_path, "workflows/t.yaml", TABBED)
    out = text(report(diag("workflows/t.yaml", 3, 4, "warning", "WF503", "too often", "")), tmp_path)
    _, source, caret = block_of(out, "workflows/t.yaml")
    assert source == "    \t- name: x"
    assert caret == "    \t  ^"
    for tabsize in (2, 4, 8):
        assert source.expandtabs(tabsize)[caret.expandtabs(tabsize).index("^")] == "n"


def test_text_caret_in_window_of_a_very_long_line(tmp_path: Path) -> None:
    line = "k: " + "a" * 400 + "X" + "b" * 400
    write(tmp_path, "long.yaml", line + "\n")
    out = text(report(diag("long.yaml", 1, line.index("X") + 1)), tmp_path)
    _, source, caret, _ = block_of(out, "long.yaml")
    assert len(source) < 200
    assert source[caret.index("^")] == "X"


@pytest.mark.parametrize(
    ("rel", "content", "line"),
    [
        ("missing.yaml", None, 1),
        ("binary.yaml", b"\x00\x01\x02garbage\n", 1),
        ("short.yaml", "a: 1\n", 40),
    ],
)
def test_text_skips_source_when_file_or_line_is_unavailable(
    tmp_path: Path, rel: str, content: bytes | str | None, line: int
) -> None:
    if content is not None:
        write(tmp_path, rel, content)
    out = text(report(diag(rel, line, 1, message="bad", hint="fix it")), tmp_path)
    assert block_of(out, rel) == [f"{rel}:{line}:1: error WF303 [dependency-cycle]: bad", "  hint: fix it"]


def test_text_replaces_invalid_utf8_instead_of_failing(tmp_path: Path) -> None:
    write(tmp_path, "latin1.yaml", b"name: caf\xe9\n")
    out = text(report(diag("latin1.yaml", 1, 7, rule="WF105")), tmp_path)
    assert block_of(out, "latin1.yaml")[1] == "    name: caf\ufffd"


def test_text_neutralises_control_characters_from_the_source(tmp_path: Path) -> None:
    write(tmp_path, "evil.yaml", "a: \x1b[31mred\n")
    out = text(report(diag("evil.yaml", 1, 4)), tmp_path)
    assert "\x1b" not in out
    assert block_of(out, "evil.yaml")[1] == "    a: ?[31mred"


def test_text_reads_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "workflows/a.yaml", WORKFLOW)
    calls: list[Path] = []
    original = formats._read_lines

    def counting(path: Path) -> list[str] | None:
        calls.append(path)
        return original(path)

    monkeypatch.setattr(formats, "_read_lines", counting)
    text(report(diag(line=1, column=1), diag(line=3, column=5), diag()), tmp_path)
    assert calls == [tmp_path / "workflows/a.yaml"]


def test_text_sorts_by_file_line_column_rule(tmp_path: Path) -> None:
    rep = report(
        diag("b.yaml", 1, 1, rule="WF300"),
        diag("a.yaml", 9, 1, rule="WF300"),
        diag("a.yaml", 2, 5, rule="WF304"),
        diag("a.yaml", 2, 5, rule="WF301"),
        diag("a.yaml", 2, 3, rule="WF305"),
    )
    headers = [line for line in text(rep, tmp_path).splitlines() if re.match(r"^\w\.yaml:\d", line)]
    assert [h.split(" [")[0] for h in headers] == [
        "a.yaml:2:3: error WF305",
        "a.yaml:2:5: error WF301",
        "a.yaml:2:5: error WF304",
        "a.yaml:9:1: error WF300",
        "b.yaml:1:1: error WF300",
    ]


def test_text_unknown_rule_shows_bare_id_and_no_empty_hint(tmp_path: Path) -> None:
    out = text(report(diag("x.yaml", 1, 1, rule="WF999", message="odd", hint="")), tmp_path)
    assert block_of(out, "x.yaml") == ["x.yaml:1:1: error WF999: odd"]


@pytest.mark.parametrize(
    ("rep", "summary"),
    [
        (report(diag(), diag(line=1), diag(severity="warning", rule="WF503")), "2 errors, 1 warning in 2 files (3 documents)"),
        (report(diag(), files=1, documents=1), "1 error, 0 warnings in 1 file (1 document)"),
        (report(files=14, documents=31), "OK: 31 documents in 14 files, no problems"),
    ],
)
def test_text_summary_counts_are_ascii(tmp_path: Path, rep: Report, summary: str) -> None:
    out = text(rep, tmp_path)
    assert out.splitlines()[-1] == summary
    assert summary.isascii()


def test_text_strict_summary_says_warnings_fail(tmp_path: Path) -> None:
    rep = report(diag(severity="warning", rule="WF503"))
    assert "--strict" in text(rep, tmp_path, strict=True).splitlines()[-1]
    assert "--strict" not in text(rep, tmp_path).splitlines()[-1]


def test_text_color_only_when_asked(tmp_path: Path) -> None:
    write(tmp_path, "workflows/a.yaml", WORKFLOW)
    rep = report(diag(), diag(line=3, column=5, severity="warning", rule="WF503"))
    plain = text(rep, tmp_path)
    colored = text(rep, tmp_path, color=True)
    assert "\x1b" not in plain
    assert "\x1b[31m" in colored  # red error
    assert "\x1b[33m" in colored  # yellow warning
    assert "\x1b[36m" in colored  # cyan hint
    assert "\x1b[1m" in colored  # bold location
    assert click.unstyle(colored) == plain


# --- json ---------------------------------------------------------------------------


def test_json_matches_spec_shape(tmp_path: Path) -> None:
    rep = report(diag("b.yaml", 1, 1), diag("a.yaml", 5, 2, "warning", "WF503", "naïve ✓", "h"))
    doc = json.loads(render(rep, "json", repo_root=tmp_path))
    assert set(doc) == {"format_version", "ok", "summary", "diagnostics"}
    assert doc["format_version"] == 1
    assert doc["ok"] is False
    assert doc["summary"] == {"files": 2, "documents": 3, "errors": 1, "warnings": 1}
    assert [d["file"] for d in doc["diagnostics"]] == ["a.yaml", "b.yaml"]
    assert doc["diagnostics"][0] == {
        "file": "a.yaml", "line": 5, "column": 2, "severity": "warning",
        "rule": "WF503", "message": "naïve ✓", "hint": "h",
    }


def test_json_is_not_ascii_escaped_and_honours_strict(tmp_path: Path) -> None:
    rep = report(diag(severity="warning", rule="WF503", message="naïve"))
    assert "naïve" in render(rep, "json", repo_root=tmp_path)
    assert json.loads(render(rep, "json", repo_root=tmp_path))["ok"] is True
    assert json.loads(render(rep, "json", repo_root=tmp_path, strict=True))["ok"] is False


# --- github -------------------------------------------------------------------------


def github(rep: Report, root: Path) -> list[str]:
    return render(rep, "github", repo_root=root).splitlines()


def test_github_annotation_exact(tmp_path: Path) -> None:
    lines = github(report(diag("workflows/a.yaml", 12, 9)), tmp_path)
    assert lines[0] == (
        "::error file=workflows/a.yaml,line=12,col=9,title=WF303 dependency-cycle::"
        "cycle a -> b -> a%0Ahint: break the cycle"
    )
    assert lines[-1] == "1 error, 0 warnings in 2 files (3 documents)"


def test_github_escapes_data_and_properties(tmp_path: Path) -> None:
    rep = report(diag("dir,x/a:b%.yaml", 1, 2, "warning", "X:1,2", "100% bad\r\nnext: a,b", "quote: it"))
    (line,) = [ln for ln in github(rep, tmp_path) if ln.startswith("::")]
    assert line == (
        "::warning file=dir%2Cx/a%3Ab%25.yaml,line=1,col=2,title=X%3A1%2C2::"
        "100%25 bad%0D%0Anext: a,b%0Ahint: quote: it"
    )


def test_github_caps_annotations_per_severity_and_says_how_many_more(tmp_path: Path) -> None:
    errors = [diag(f"e{i:02}.yaml", 1, 1) for i in range(12)]
    warnings = [diag(f"w{i:02}.yaml", 1, 1, "warning", "WF503") for i in range(13)]
    lines = github(report(*warnings, *errors), tmp_path)
    annotations = [ln for ln in lines if ln.startswith("::")]
    assert [a.split(",")[0] for a in annotations] == (
        [f"::error file=e{i:02}.yaml" for i in range(10)] + [f"::warning file=w{i:02}.yaml" for i in range(10)]
    )
    more = [ln for ln in lines if not ln.startswith("::")]
    assert len(more) == 2
    assert more[0].startswith("5 more problems")
    assert "step summary" in more[0]
    assert more[1] == "12 errors, 13 warnings in 2 files (3 documents)"


def test_github_errors_first_then_location_order_without_more_line(tmp_path: Path) -> None:
    rep = report(
        diag("b.yaml", 1, 1, "warning", "WF503"), diag("b.yaml", 7, 1), diag("a.yaml", 3, 1, "warning", "WF503"),
        diag("a.yaml", 9, 1),
    )
    lines = github(rep, tmp_path)
    assert [ln.split(",col")[0] for ln in lines[:-1]] == [
        "::error file=a.yaml,line=9", "::error file=b.yaml,line=7",
        "::warning file=a.yaml,line=3", "::warning file=b.yaml,line=1",
    ]
    assert len(lines) == 5


def test_github_clean_run_has_only_summary(tmp_path: Path) -> None:
    assert github(report(), tmp_path) == ["OK: 3 documents in 2 files, no problems"]


# --- step summary -------------------------------------------------------------------


def test_step_summary_lists_every_diagnostic(tmp_path: Path) -> None:
    diagnostics = [diag(f"workflows/w{i:02}.yaml", i + 1, 3, message=f"problem {i}") for i in range(30)]
    md = step_summary(report(*diagnostics))
    assert md.startswith("## ")
    assert "30 errors, 0 warnings" in md
    for d in diagnostics:
        assert f"| {d.file}:{d.line}:3 | error | WF303 dependency-cycle | {d.message} | break the cycle |" in md


def test_step_summary_escapes_cells(tmp_path: Path) -> None:
    md = step_summary(report(diag("a.yaml", 1, 1, message="a | b\nsecond <b>", hint="x|y")))
    (row,) = [ln for ln in md.splitlines() if ln.startswith("| a.yaml")]
    assert "a \\| b<br>second &lt;b&gt;" in row
    assert "x\\|y" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 6


def test_step_summary_without_problems() -> None:
    md = step_summary(report())
    assert "No problems found" in md
    assert "|" not in md


def test_step_summary_strict_warning_fails() -> None:
    rep = report(diag(severity="warning", rule="WF503"))
    assert "passed" in step_summary(rep).splitlines()[0]
    assert "failed" in step_summary(rep, strict=True).splitlines()[0]


# --- sarif --------------------------------------------------------------------------

SARIF_SUBSET = {
    "type": "object",
    "required": ["$schema", "version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results", "columnKind", "originalUriBaseIds"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "version", "informationUri", "rules"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": [
                                                "id", "name", "shortDescription", "fullDescription",
                                                "defaultConfiguration", "helpUri",
                                            ],
                                            "properties": {
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "fullDescription": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "required": ["level"],
                                                    "properties": {"level": {"$ref": "#/$defs/level"}},
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "ruleIndex", "level", "message", "locations"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"$ref": "#/$defs/level"},
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["physicalLocation"],
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation", "region"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri", "uriBaseId"],
                                                        "properties": {"uri": {"type": "string"}},
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine", "startColumn"],
                                                        "properties": {
                                                            "startLine": {"type": "integer", "minimum": 1},
                                                            "startColumn": {"type": "integer", "minimum": 1},
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "message": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        "level": {"enum": ["none", "note", "warning", "error"]},
    },
}


def sarif(rep: Report, root: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads(render(rep, "sarif", repo_root=root))
    jsonschema.Draft202012Validator(SARIF_SUBSET).validate(doc)
    return doc


def only_run(doc: dict[str, object]) -> dict[str, object]:
    runs = doc["runs"]
    assert isinstance(runs, list) and len(runs) == 1
    run: dict[str, object] = runs[0]
    return run


def test_sarif_header_and_every_catalogue_rule(tmp_path: Path) -> None:
    doc = sarif(report(), tmp_path)
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    run = only_run(doc)
    driver = run["tool"]["driver"]  # type: ignore[index]
    assert driver["name"] == "wfctl"
    assert driver["version"] == wfctl.__version__
    assert [r["id"] for r in driver["rules"]] == list(RULES)
    for entry in driver["rules"]:
        rule = RULES[entry["id"]]
        assert entry["name"] == rule.name
        assert entry["shortDescription"]["text"] == rule.summary
        assert entry["defaultConfiguration"]["level"] == rule.severity
        assert entry["helpUri"].startswith("https://github.com/wfctl/wfctl#")
    assert run["results"] == []
    assert run["columnKind"] == "unicodeCodePoints"


def test_sarif_results_point_at_rules_and_locations(tmp_path: Path) -> None:
    rep = report(
        diag("workflows/a.yaml", 4, 17),
        diag("my dir/s.yaml", 2, 9, "warning", "WF503", "every minute", "use */5"),
    )
    run = only_run(sarif(rep, tmp_path))
    rules = run["tool"]["driver"]["rules"]  # type: ignore[index]
    results = run["results"]
    assert isinstance(results, list)
    by_rule = {r["ruleId"]: r for r in results}
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    warning = by_rule["WF503"]
    assert warning["level"] == "warning"
    assert warning["message"]["text"] == "every minute\nhint: use */5"
    location = warning["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "my%20dir/s.yaml", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 2, "startColumn": 9}
    error = by_rule["WF303"]["locations"][0]["physicalLocation"]
    assert error["artifactLocation"]["uri"] == "workflows/a.yaml"
    assert error["region"] == {"startLine": 4, "startColumn": 17}
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": tmp_path.resolve().as_uri() + "/"}}


def test_sarif_unknown_rule_has_no_rule_index(tmp_path: Path) -> None:
    doc = json.loads(render(report(diag(rule="WF999")), "sarif", repo_root=tmp_path))
    (result,) = doc["runs"][0]["results"]
    assert result["ruleId"] == "WF999"
    assert "ruleIndex" not in result


# --- junit --------------------------------------------------------------------------


def junit(rep: Report, root: Path, strict: bool = False) -> tuple[str, ET.Element]:
    xml = render(rep, "junit", repo_root=root, strict=strict)
    return xml, ET.fromstring(xml)


def test_junit_clean_run_has_one_passing_test(tmp_path: Path) -> None:
    xml, root = junit(report(), tmp_path)
    assert xml.startswith("<?xml version=")
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("1", "0")
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("wfctl validate", "1", "0")
    (case,) = suite.findall("testcase")
    assert case.get("name") == "all files"
    assert list(case) == []


def test_junit_one_testcase_per_file_with_right_counts(tmp_path: Path) -> None:
    rep = report(
        diag("workflows/a.yaml", 4, 17),
        diag("workflows/a.yaml", 1, 1, rule="WF300"),
        diag("workflows/a.yaml", 2, 1, "warning", "WF503", "often", "slow down"),
        diag("workflows/b.yaml", 2, 1, "warning", "WF503", "often", "slow down"),
    )
    _, root = junit(rep, tmp_path)
    suite = root.find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"workflows/a.yaml", "workflows/b.yaml"}
    assert cases["workflows/a.yaml"].get("classname") == "wfctl.workflows.a.yaml"
    assert [f.get("type") for f in cases["workflows/a.yaml"].findall("failure")] == ["WF300", "WF303"]
    assert cases["workflows/b.yaml"].find("failure") is None
    assert "WF503" in (cases["workflows/b.yaml"].findtext("system-out") or "")
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures")) == ("2", "1")


def test_junit_strict_turns_warnings_into_failures(tmp_path: Path) -> None:
    _, root = junit(report(diag("b.yaml", 2, 1, "warning", "WF503", "often", "slow")), tmp_path, strict=True)
    (case,) = root.iter("testcase")
    assert [f.get("type") for f in case.findall("failure")] == ["WF503"]
    assert case.find("system-out") is None
    assert (root.get("tests"), root.get("failures")) == ("1", "1")


def test_junit_escapes_special_characters(tmp_path: Path) -> None:
    message = 'bad <tag> & "quote" \'apos\' > end\x01'
    xml, root = junit(report(diag('odd<&">.yaml', 1, 1, message=message, hint="use <&>")), tmp_path)
    assert "&lt;tag&gt;" in xml and "&amp;" in xml
    (case,) = root.iter("testcase")
    assert case.get("name") == 'odd<&">.yaml'
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == message[:-1] + "\ufffd"
    assert failure.text is not None and failure.text.endswith("\nhint: use <&>")


# --- dispatch -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_clean_and_dirty_reports(tmp_path: Path, fmt: str) -> None:
    for rep in (report(), report(diag(), diag("c.yaml", 1, 1, "warning", "WF503"))):
        out = render(rep, fmt, repo_root=tmp_path)
        assert out and not out.endswith("\n")


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown output format 'yaml'"):
        render(report(), "yaml", repo_root=tmp_path)
