"""Diagnostics: what every validation rule produces and every formatter consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem at one place: repo-relative ``file`` (with ``/``), 1-based line/column."""

    file: str
    line: int
    column: int
    severity: Severity
    rule: str
    message: str
    hint: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Report:
    """The outcome of one validation run, before formatting."""

    diagnostics: list[Diagnostic]
    files: int
    documents: int

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "warning")

    def ok(self, strict: bool = False) -> bool:
        return self.errors == 0 and not (strict and self.warnings)

    def to_json(self, strict: bool = False) -> dict[str, object]:
        return {
            "ok": self.ok(strict),
            "summary": {
                "files": self.files,
                "documents": self.documents,
                "errors": self.errors,
                "warnings": self.warnings,
            },
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }
