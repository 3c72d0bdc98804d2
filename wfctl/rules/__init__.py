"""The catalogue of validation rules: stable ids, names, severities and summaries.

Ids never change meaning once released; formatters (SARIF) and the README read
this table. The checks themselves live in the sibling modules, grouped by what
they look at.
"""

from __future__ import annotations

from dataclasses import dataclass

from wfctl.diagnostics import Diagnostic, Severity


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    summary: str

    def at(self, file: str, pos: tuple[int, int], message: str, hint: str) -> Diagnostic:
        """A diagnostic of this rule at ``pos`` (1-based line, column)."""
        return Diagnostic(file, pos[0], pos[1], self.severity, self.id, message, hint)


def _catalogue(*rules: Rule) -> dict[str, Rule]:
    return {r.id: r for r in rules}


YAML_SYNTAX = Rule("WF100", "yaml-syntax", "error", "The file is not valid YAML.")
DUPLICATE_KEY = Rule("WF101", "duplicate-key", "error", "A mapping repeats a key; YAML parsers silently keep the last one.")
AMBIGUOUS_SCALAR = Rule(
    "WF102", "yaml-1.1-surprise", "error",
    "An unquoted value that YAML 1.1 reads as a boolean, number or date stands where a string is expected.",
)
ALIAS_LIMIT = Rule("WF103", "alias-expansion", "error", "Anchors and aliases expand past the size limit (\"billion laughs\").")
FILE_TOO_LARGE = Rule("WF104", "file-too-large", "error", "The file is larger than the size limit.")
ENCODING = Rule("WF105", "encoding", "error", "The file is not UTF-8 text.")
TOO_DEEP = Rule("WF106", "nesting-depth", "error", "Collections are nested deeper than the limit.")
TOO_MANY_DOCUMENTS = Rule("WF107", "document-count", "error", "The file holds more YAML documents than the limit.")
UNKNOWN_KIND = Rule("WF108", "unknown-kind", "error", "A wfctl/ document has an unknown apiVersion or kind.")
UNSUPPORTED_TAG = Rule("WF109", "yaml-tag", "error", "The document uses a YAML tag wfctl does not accept.")
REPO_TOO_LARGE = Rule("WF110", "repo-size", "error", "The YAML files under the configured paths exceed the total size limit.")
SCHEMA = Rule("WF200", "schema", "error", "The document does not match the JSON Schema of its kind.")
UNKNOWN_DEPENDENCY = Rule("WF300", "unknown-dependency", "error", "depends_on names no task or group of the workflow.")
SELF_DEPENDENCY = Rule("WF301", "self-dependency", "error", "A task or group depends on itself.")
DUPLICATE_DEPENDENCY = Rule("WF302", "duplicate-dependency", "error", "depends_on lists the same edge twice.")
CYCLE = Rule("WF303", "dependency-cycle", "error", "Dependencies form a cycle, so the workflow is not a DAG.")
DUPLICATE_TASK = Rule("WF304", "duplicate-task-name", "error", "Two tasks or groups of one workflow share a name.")
EMPTY_WORKFLOW = Rule("WF305", "empty-workflow", "error", "A workflow has no tasks.")
UNKNOWN_COMPONENT = Rule("WF400", "unknown-component", "error", "A task uses a component that no document defines.")
UNKNOWN_TEMPLATE = Rule("WF401", "unknown-template", "error", "A workflow uses a template that no document defines.")
TEMPLATE_VALUES = Rule("WF402", "template-values", "error", "Template values do not match the template's parameters schema.")
COMPONENT_INPUTS = Rule("WF403", "component-inputs", "error", "A task's with: does not match its component's inputs schema.")
UNRESOLVED_PLACEHOLDER = Rule("WF404", "unresolved-placeholder", "error", "A ${{ values.x }} placeholder names no value.")
INVALID_INPUTS_SCHEMA = Rule(
    "WF405", "invalid-inputs-schema", "error", "A component's inputs (or a template's parameters) is not a valid JSON Schema.",
)
INVALID_CALLABLE = Rule("WF406", "invalid-callable", "error", "A python callable is not written as module:function.")
AIRFLOW_RENDER = Rule(
    "WF407", "airflow-render", "error",
    "The workflow cannot be rendered as an Airflow DAG (a component type with no operator, a bad scheduled param).",
)
INVALID_CRON = Rule("WF500", "invalid-cron", "error", "The schedule's cron expression does not parse.")
INVALID_TIMEZONE = Rule("WF501", "invalid-timezone", "error", "The schedule's timezone is not an IANA timezone name.")
DATE_ORDER = Rule("WF502", "date-order", "error", "end_date is before start_date (or a date does not parse).")
FREQUENT_SCHEDULE = Rule("WF503", "frequent-schedule", "warning", "The schedule runs more often than every 5 minutes.")
DUPLICATE_NAME = Rule("WF600", "duplicate-name", "error", "Two documents of one kind share a name across the repo.")

RULES: dict[str, Rule] = _catalogue(
    YAML_SYNTAX, DUPLICATE_KEY, AMBIGUOUS_SCALAR, ALIAS_LIMIT, FILE_TOO_LARGE, ENCODING, TOO_DEEP,
    TOO_MANY_DOCUMENTS, UNKNOWN_KIND, UNSUPPORTED_TAG, REPO_TOO_LARGE, SCHEMA, UNKNOWN_DEPENDENCY, SELF_DEPENDENCY,
    DUPLICATE_DEPENDENCY, CYCLE, DUPLICATE_TASK, EMPTY_WORKFLOW, UNKNOWN_COMPONENT, UNKNOWN_TEMPLATE,
    TEMPLATE_VALUES, COMPONENT_INPUTS, UNRESOLVED_PLACEHOLDER, INVALID_INPUTS_SCHEMA, INVALID_CALLABLE, AIRFLOW_RENDER,
    INVALID_CRON, INVALID_TIMEZONE, DATE_ORDER, FREQUENT_SCHEDULE, DUPLICATE_NAME,
)
