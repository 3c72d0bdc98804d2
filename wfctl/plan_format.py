"""Plan renderings: terraform-like text for terminals, markdown for pull-request
comments, JSON for scripts (SPEC section 6 shape)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import click

from wfctl.plan import Change, FieldChange, Plan

SYMBOLS = {"create": "+", "update": "~", "delete": "-"}
COLORS = {"create": "green", "update": "yellow", "delete": "red"}
_VALUE_WIDTH = 100
Style = Callable[..., str]


def render(plan: Plan, fmt: str, color: bool = False) -> str:
    if fmt == "json":
        return json.dumps(plan.to_json(), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        return markdown(plan)
    return text(plan, color)


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if not plan.has_changes and not plan.overrides:
        return f"No changes. {s['unchanged']} workflow(s) match the base."
    line = f"Plan: {s['create']} to create, {s['update']} to update, {s['delete']} to delete, {s['unchanged']} unchanged."
    if plan.overrides:
        line += f" {len(plan.overrides)} override flip(s)."
    return line


def _base_label(plan: Plan) -> str:
    version = f"CODE version {plan.base.version}" if plan.base.version is not None else "an empty base"
    return f"{version} ({plan.base.label})"


def text(plan: Plan, color: bool = False) -> str:
    def style(value: str, **kwargs: Any) -> str:
        return click.style(value, **kwargs) if color else value

    lines = [f"Comparing the repo with {_base_label(plan)}.", ""]
    for change in plan.changes:
        lines += _text_change(change, style)
    for effect in plan.overrides:
        verb = "will be overridden by CODE" if effect.effect == "overridden" else "will be active again"
        lines.append(f"  ! MANUAL {effect.name} {verb}")
    if plan.changes or plan.overrides:
        lines.append("")
    lines.append(style(summary_line(plan), bold=True))
    return "\n".join(lines)


def _text_change(change: Change, style: Style) -> list[str]:
    symbol = style(SYMBOLS[change.action], fg=COLORS[change.action], bold=True)
    where = f"  ({change.source_path})" if change.source_path else ""
    lines = [f"  {symbol} {change.action:<6} {style(change.name, bold=True)}{where}"]
    for f in change.fields:
        lines.append(f"      {_field_line(f)}")
    lines += [f"      {line}" for line in _runs_lines(change)]
    return lines


def _field_line(f: FieldChange) -> str:
    if f.before is None:
        return f"+ {f.path}: {_short(f.after)}"
    if f.after is None:
        return f"- {f.path}: {_short(f.before)}"
    return f"~ {f.path}: {_short(f.before)} -> {_short(f.after)}"


def _runs_lines(change: Change) -> Iterator[str]:
    if not change.runs:
        return
    for side in ("before", "after"):
        if change.action == "create" and side == "before":
            continue
        runs = ", ".join(change.runs[side]) or "(no scheduled runs)"
        yield f"next runs {side}: {runs}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 3] + "..."


def markdown(plan: Plan) -> str:
    """A pull-request comment: a summary table, then one collapsible section per workflow."""
    s = plan.summary
    lines = [
        "### wfctl plan",
        "",
        f"Against {_base_label(plan)}.",
        "",
        "| create | update | delete | unchanged | override flips |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {s['create']} | {s['update']} | {s['delete']} | {s['unchanged']} | {len(plan.overrides)} |",
        "",
    ]
    for change in plan.changes:
        lines += _markdown_change(change)
    if plan.overrides:
        lines += ["**Override effects**", ""]
        lines += [f"- MANUAL `{o.name}` becomes **{o.effect}**" for o in plan.overrides]
        lines.append("")
    lines.append(f"**{summary_line(plan)}**")
    return "\n".join(lines)


def _markdown_change(change: Change) -> list[str]:
    detail = f" ({len(change.fields)} field(s))" if change.fields else ""
    where = f" from `{change.source_path}`" if change.source_path else ""
    body = [_field_line(f) for f in change.fields] + list(_runs_lines(change))
    lines = [f"<details><summary><code>{SYMBOLS[change.action]}</code> {change.action} <b>{change.name}</b>"
             f"{detail}{where}</summary>", ""]
    if body:
        lines += ["```diff", *(_escape_fence(line) for line in body), "```", ""]
    else:
        lines += [f"The whole workflow is {change.action}d.", ""]
    return [*lines, "</details>", ""]


def _escape_fence(line: str) -> str:
    return line.replace("```", "`\u200b``")
