"""User-facing errors: one code, one message, one hint, one exit code.

Every failure a user can cause or fix surfaces as a :class:`WfError`; the CLI
prints it as ``error[WFnnn]: message`` plus ``hint: ...`` (or the JSON error
shape) and never a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_DESTRUCTIVE = 4

NOT_FOUND = "WF800"
MANAGED_BY_CODE = "WF801"
OVERRIDDEN = "WF802"
CONFLICT = "WF803"
STORE_UNAVAILABLE = "WF804"
DIRTY_TREE = "WF805"
INTEGRITY = "WF806"
ALREADY_EXISTS = "WF807"
INVALID_CONFIG = "WF808"
AIRFLOW = "WF809"
STALE_PLAN = "WF810"
OUT_OF_ORDER = "WF811"
VALIDATION_FAILED = "WF812"
USAGE = "WF813"
MASS_DELETE = "WF814"
RENDER = "WF815"
INTERNAL = "WF899"

_DEFAULT_EXIT = {CONFLICT: EXIT_CONFLICT, STALE_PLAN: EXIT_CONFLICT, OUT_OF_ORDER: EXIT_CONFLICT, USAGE: EXIT_USAGE}


class WfError(Exception):
    """An error the user can act on; carries its stable code and a fix."""

    def __init__(self, code: str, message: str, hint: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.exit_code = exit_code if exit_code is not None else _DEFAULT_EXIT.get(code, EXIT_FAILED)

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message, "hint": self.hint}}


class ValidationFailed(WfError):
    """Validation found errors; the caller prints the report before the error line."""

    def __init__(self, report: object, root: object) -> None:
        super().__init__(VALIDATION_FAILED, "validation failed: nothing was changed",
                         "fix the problems listed above (`wfctl validate` shows them with their hints)")
        self.report = report
        self.root = root
