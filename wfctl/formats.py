"""Validation output formats: one ``Report``, rendered for people, scripts and CI.

``text`` is for terminals, ``json`` for scripts, ``github`` for workflow-command
annotations, ``sarif`` for code scanning and ``junit`` for test-report viewers
(SPEC sections 3 and 6). Renderers return the document without a trailing newline
so the caller can ``click.echo`` it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from urllib.parse import quote

import click

from wfctl import __version__
from wfctl.diagnostics import Diagnostic, Report
from wfctl.rules import RULES, Rule

FORMATS = ("text", "json", "github", "sarif", "junit")

JSON_FORMAT_VERSION = 1
# GitHub shows at most 10 error and 10 warning annotations per step; the rest vanish.
GITHUB_ANNOTATIONS_PER_SEVERITY = 10
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_URI = "https://github.com/wfctl/wfctl"
RULES_HELP_URI = TOOL_URI + "#rules"

# Source files larger than this are not read just to echo one line.
_MAX_SOURCE_BYTES = 8 * 1024 * 1024
# Longer source lines are cut to a window around the column.
_MAX_SOURCE_WIDTH = 160
# The line breaks PyYAML counts, so our line numbers match its marks.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
# Control characters would corrupt a terminal (or smuggle escape codes); tab is kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters XML 1.0 cannot represent at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class _Options:
    repo_root: Path
    strict: bool
    color: bool


def render(
    report: Report, fmt: str, *, repo_root: Path, strict: bool = False, color: bool = False
) -> str:
    """Render ``report`` as ``fmt`` (one of ``FORMATS``); ``repo_root`` locates sources."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return renderer(report, _Options(repo_root, strict, color))


# --- shared helpers ---------------------------------------------------------------


def _by_location(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Reading order: what a person fixing files top to bottom wants."""
    return sorted(diagnostics, key=lambda d: (d.file, d.line, d.column, d.rule))


def _errors_first(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Errors before warnings, so caps on output drop the least important first."""
    return sorted(_by_location(diagnostics), key=lambda d: d.severity != "error")


def _rule_name(rule_id: str) -> str | None:
    rule = RULES.get(rule_id)
    return rule.name if rule else None


def _rule_label(rule_id: str, template: str) -> str:
    """``rule_id`` plus its name via ``template`` (``{id}``/``{name}``), or just the id."""
    name = _rule_name(rule_id)
    return template.format(id=rule_id, name=name) if name else rule_id


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary_line(report: Report, strict: bool) -> str:
    """One ASCII line of counts: terminals and CI logs may not be UTF-8."""
    where = f"{_plural(report.files, 'file')} ({_plural(report.documents, 'document')})"
    if not report.diagnostics:
        return f"OK: {_plural(report.documents, 'document')} in {_plural(report.files, 'file')}, no problems"
    line = f"{_plural(report.errors, 'error')}, {_plural(report.warnings, 'warning')} in {where}"
    if strict and report.warnings:
        line += " (--strict: warnings fail the run)"
    return line


def _message_with_hint(d: Diagnostic) -> str:
    return f"{d.message}\nhint: {d.hint}" if d.hint else d.message


# --- text ---------------------------------------------------------------------------


@dataclass
class _Sources:
    """Source lines per file, read lazily and at most once per file."""

    root: Path
    _cache: dict[str, list[str] | None] = field(default_factory=dict)

    def line(self, file: str, number: int) -> str | None:
        if file not in self._cache:
            self._cache[file] = _read_lines(self.root / file)
        lines = self._cache[file]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


def _read_lines(path: Path) -> list[str] | None:
    """The file's lines, or None when it is unreadable, huge or binary."""
    try:
        if path.stat().st_size > _MAX_SOURCE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    return _LINE_BREAK.split(data.decode("utf-8", errors="replace"))


def _window(line: str, column: int) -> tuple[str, int]:
    """Cut an over-long line around ``column`` (1-based); returns the text and new column."""
    if len(line) <= _MAX_SOURCE_WIDTH:
        return line, column
    start = max(0, min(column - 1 - _MAX_SOURCE_WIDTH // 2, len(line) - _MAX_SOURCE_WIDTH))
    text = line[start : start + _MAX_SOURCE_WIDTH]
    prefix = "..." if start else ""
    suffix = "..." if start + _MAX_SOURCE_WIDTH < len(line) else ""
    return prefix + text + suffix, column - start + len(prefix)


def _caret(line: str, column: int) -> str:
    """A ``^`` under ``column``, copying tabs before it so it lines up in any tab width."""
    before = line[: max(column - 1, 0)]
    pad = "".join("\t" if ch == "\t" else " " for ch in before)
    return pad + " " * (column - 1 - len(before)) + "^"


def _paint(text: str, color: bool, *, fg: str | None = None, bold: bool | None = None) -> str:
    return click.style(text, fg=fg, bold=bold) if color else text


def _severity_color(d: Diagnostic) -> str:
    return "red" if d.severity == "error" else "yellow"


def _text_header(d: Diagnostic, color: bool) -> str:
    location = _paint(f"{d.file}:{d.line}:{d.column}:", color, bold=True)
    severity = _paint(d.severity, color, fg=_severity_color(d), bold=True)
    return f"{location} {severity} {_rule_label(d.rule, '{id} [{name}]')}: {d.message}"


def _text_source(d: Diagnostic, sources: _Sources, color: bool) -> list[str]:
    line = sources.line(d.file, d.line)
    if line is None:
        return []
    shown, column = _window(_CONTROL.sub("?", line), d.column)
    return ["    " + shown, "    " + _paint(_caret(shown, column), color, fg=_severity_color(d))]


def _text_diagnostic(d: Diagnostic, sources: _Sources, color: bool) -> list[str]:
    lines = [_text_header(d, color), *_text_source(d, sources, color)]
    if d.hint:
        lines.append(_paint(f"  hint: {d.hint}", color, fg="cyan"))
    return lines


def _text_summary(report: Report, opts: _Options) -> str:
    fg = "red" if not report.ok(opts.strict) else "yellow" if report.warnings else "green"
    return _paint(_summary_line(report, opts.strict), opts.color, fg=fg, bold=True)


def _render_text(report: Report, opts: _Options) -> str:
    sources = _Sources(opts.repo_root)
    blocks = ["\n".join(_text_diagnostic(d, sources, opts.color)) for d in _by_location(report.diagnostics)]
    return "\n\n".join([*blocks, _text_summary(report, opts)])


# --- json ---------------------------------------------------------------------------


def _render_json(report: Report, opts: _Options) -> str:
    ordered = dataclasses.replace(report, diagnostics=_by_location(report.diagnostics))
    document = {"format_version": JSON_FORMAT_VERSION, **ordered.to_json(opts.strict)}
    return json.dumps(document, indent=2, ensure_ascii=False)


# --- github -------------------------------------------------------------------------


def _github_data(value: str) -> str:
    """Escape a workflow-command message exactly as @actions/core ``escapeData`` does."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(value: str) -> str:
    """Escape a workflow-command property as @actions/core ``escapeProperty`` does."""
    return _github_data(value).replace(":", "%3A").replace(",", "%2C")


def _github_annotation(d: Diagnostic) -> str:
    props = {
        "file": d.file,
        "line": str(d.line),
        "col": str(d.column),
        "title": _rule_label(d.rule, "{id} {name}"),
    }
    rendered = ",".join(f"{key}={_github_property(value)}" for key, value in props.items())
    return f"::{d.severity} {rendered}::{_github_data(_message_with_hint(d))}"


def _github_split(report: Report) -> tuple[list[Diagnostic], int]:
    """The diagnostics GitHub will show (per-severity cap), and how many are left over."""
    shown: list[Diagnostic] = []
    for _, group in groupby(_errors_first(report.diagnostics), key=lambda d: d.severity):
        shown.extend(list(group)[:GITHUB_ANNOTATIONS_PER_SEVERITY])
    return shown, len(report.diagnostics) - len(shown)


def _render_github(report: Report, opts: _Options) -> str:
    shown, hidden = _github_split(report)
    lines = [_github_annotation(d) for d in shown]
    if hidden:
        lines.append(
            f"{_plural(hidden, 'more problem')} not annotated (GitHub shows at most "
            f"{GITHUB_ANNOTATIONS_PER_SEVERITY} errors and {GITHUB_ANNOTATIONS_PER_SEVERITY} "
            "warnings per step); the full list is in the step summary."
        )
    lines.append(_summary_line(report, opts.strict))
    return "\n".join(lines)


# --- step summary -------------------------------------------------------------------


def _markdown_cell(value: str) -> str:
    """Keep a value inside its table cell: no pipes, no line breaks, no raw HTML."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = value.replace("|", "\\|").replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("\n", "<br>")


def _markdown_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(_markdown_cell(c) for c in cells) + " |"


def _markdown_table(diagnostics: list[Diagnostic]) -> list[str]:
    header = ["Location", "Severity", "Rule", "Message", "Hint"]
    rows = [
        [f"{d.file}:{d.line}:{d.column}", d.severity, _rule_label(d.rule, "{id} {name}"), d.message, d.hint]
        for d in diagnostics
    ]
    return [_markdown_row(header), "| --- | --- | --- | --- | --- |", *map(_markdown_row, rows)]


def step_summary(report: Report, *, strict: bool = False) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: every diagnostic, since annotations are capped."""
    verdict = "passed" if report.ok(strict) else "failed"
    lines = [f"## wfctl validate {verdict}", "", _summary_line(report, strict), ""]
    if not report.diagnostics:
        return "\n".join([*lines, "No problems found."])
    return "\n".join([*lines, *_markdown_table(_errors_first(report.diagnostics))])


# --- sarif --------------------------------------------------------------------------


def _sarif_rule(rule: Rule) -> dict[str, object]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.id} {rule.name}: {rule.summary}"},
        "defaultConfiguration": {"level": rule.severity},
        "helpUri": RULES_HELP_URI,
    }


def _sarif_result(d: Diagnostic, rule_index: dict[str, int]) -> dict[str, object]:
    result: dict[str, object] = {"ruleId": d.rule}
    if d.rule in rule_index:
        result["ruleIndex"] = rule_index[d.rule]
    result["level"] = d.severity
    result["message"] = {"text": _message_with_hint(d)}
    result["locations"] = [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": quote(d.file), "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": d.line, "startColumn": d.column},
            }
        }
    ]
    return result


def _directory_uri(path: Path) -> str:
    """A ``file:`` URI ending in ``/``, as SARIF requires for a base directory."""
    uri = path.resolve().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _render_sarif(report: Report, opts: _Options) -> str:
    rules = list(RULES.values())
    rule_index = {rule.id: i for i, rule in enumerate(rules)}
    driver = {
        "name": "wfctl",
        "version": __version__,
        "informationUri": TOOL_URI,
        "rules": [_sarif_rule(rule) for rule in rules],
    }
    run = {
        "tool": {"driver": driver},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": _directory_uri(opts.repo_root)}},
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(d, rule_index) for d in _by_location(report.diagnostics)],
    }
    document = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(document, indent=2, ensure_ascii=False)


# --- junit --------------------------------------------------------------------------


def _xml_text(value: str) -> str:
    """Replace characters XML 1.0 cannot carry, which would make the file unparsable."""
    return _NOT_XML.sub("\ufffd", value)


def _junit_line(d: Diagnostic) -> str:
    header = f"{d.file}:{d.line}:{d.column}: {d.severity} {_rule_label(d.rule, '{id} [{name}]')}"
    return _xml_text(f"{header}: {_message_with_hint(d)}")


def _fails(d: Diagnostic, strict: bool) -> bool:
    return d.severity == "error" or strict


def _junit_testcase(file: str, diagnostics: list[Diagnostic], strict: bool) -> ET.Element:
    classname = "wfctl." + file.replace("/", ".")
    case = ET.Element("testcase", classname=_xml_text(classname), name=_xml_text(file))
    for d in (d for d in diagnostics if _fails(d, strict)):
        failure = ET.SubElement(case, "failure", type=_xml_text(d.rule), message=_xml_text(d.message))
        failure.text = _junit_line(d)
    passed = [_junit_line(d) for d in diagnostics if not _fails(d, strict)]
    if passed:
        ET.SubElement(case, "system-out").text = "\n".join(passed)
    return case


def _junit_testcases(report: Report, strict: bool) -> list[ET.Element]:
    if not report.diagnostics:
        return [ET.Element("testcase", classname="wfctl", name="all files")]
    by_file = groupby(_by_location(report.diagnostics), key=lambda d: d.file)
    return [_junit_testcase(file, list(group), strict) for file, group in by_file]


def _junit_counts(cases: list[ET.Element]) -> dict[str, str]:
    """JUnit counts test cases, so ``failures`` is failing cases, not failure elements."""
    failures = sum(1 for case in cases if case.find("failure") is not None)
    return {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": "0"}


def _render_junit(report: Report, opts: _Options) -> str:
    cases = _junit_testcases(report, opts.strict)
    attributes = {"name": "wfctl validate", **_junit_counts(cases)}
    root = ET.Element("testsuites", attributes)
    suite = ET.SubElement(root, "testsuite", attributes)
    suite.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


_RENDERERS: dict[str, Callable[[Report, _Options], str]] = {
    "text": _render_text,
    "json": _render_json,
    "github": _render_github,
    "sarif": _render_sarif,
    "junit": _render_junit,
}
