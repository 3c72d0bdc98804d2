"""Workflow, component and template names: the SPEC's rule, in one place.

Names become S3 keys, file names and Airflow dag_ids, so anything a user types
as a name is checked here before it reaches a store or the file system.
"""

from __future__ import annotations

import re

from wfctl.errors import USAGE, WfError

NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?$")
NAME_RULE = ("1-128 characters of a-z 0-9 . _ -, starting and ending with a letter or digit, no '..' "
             "(names become store keys, file names and dag_ids)")


def is_valid(name: str) -> bool:
    return bool(NAME.fullmatch(name)) and ".." not in name


def check_name(name: str) -> str:
    if not is_valid(name):
        raise WfError(USAGE, f"invalid workflow name {name!r}", f"a name is {NAME_RULE}")
    return name
