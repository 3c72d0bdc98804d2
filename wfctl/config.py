"""Configuration: flags beat ``WFCTL_*`` environment variables, which beat
``wfctl.yaml``, which beats defaults. Every value remembers where it came from,
so ``wfctl config`` can explain itself and errors can name their source."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wfctl.errors import INVALID_CONFIG, WfError

CONFIG_FILE = "wfctl.yaml"
LOCAL_STORE = ".wfctl/store"
DEFAULTS: dict[str, Any] = {
    "store": None,  # the local store under the repo root
    "paths": ["."],
    "deploy_branch": "main",
    "dags_prefix": "effective/dags/",
    "endpoint_url": None,
    "airflow_url": None,
    "airflow_username": None,
    "airflow_password": None,
    "cache": True,  # the validation cache under .wfctl/cache/
}
ENV = {key: f"WFCTL_{key.upper()}" for key in DEFAULTS}
SECRETS = {"airflow_password"}
_FILE_KEYS = {"store", "paths", "deploy_branch", "dags_prefix", "airflow", "cache"}
_FALSE = {"0", "false", "no", "off"}


@dataclass
class Config:
    root: Path
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def store_url(self) -> str:
        """A relative directory in wfctl.yaml is relative to the repo root; from a
        flag or the environment, relative to the working directory."""
        url = self.values["store"]
        if not url:
            return str(self.root / LOCAL_STORE)
        url = str(url)
        if "://" in url or Path(url).is_absolute():
            return url
        base = self.root if self.sources["store"] == CONFIG_FILE else Path.cwd()
        return str(base / url)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each setting with its source; secrets are redacted, never printed."""
        return {key: {"value": _shown(key, value), "source": self.sources[key]} for key, value in self.values.items()}


def redact_url(url: str) -> str:
    """A URL with any user:password part replaced by ``***`` (for every message and listing)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urllib.parse.urlunsplit((parts.scheme, f"***@{host}", parts.path, "", ""))
    return url


def _shown(key: str, value: Any) -> Any:
    if key in SECRETS and value:
        return "***"
    return redact_url(value) if isinstance(value, str) and "://" in value else value


def find_root(start: Path) -> Path:
    """The git work tree containing ``start``, or ``start`` itself outside git."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def load(root: Path, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    layers: list[tuple[str, dict[str, Any]]] = [
        ("flag", {k: v for k, v in (flags or {}).items() if v is not None}),
        ("env", _from_env(env)),
        (CONFIG_FILE, _from_file(root / CONFIG_FILE)),
    ]
    config = Config(root, {})
    for key, default in DEFAULTS.items():
        source, value = next(((s, layer[key]) for s, layer in layers if key in layer), ("default", default))
        config.values[key] = value
        config.sources[key] = f"env {ENV[key]}" if source == "env" else source
    _check_paths(config)
    if not isinstance(config.values["cache"], bool):
        raise WfError(INVALID_CONFIG, f"cache ({config.sources['cache']}) must be true or false",
                      "write `cache: false` to turn the validation cache off, or leave it out")
    return config


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {key: env[var] for key, var in ENV.items() if env.get(var)}
    if "paths" in values:
        values["paths"] = [p for p in values["paths"].split(os.pathsep) if p]
    if "cache" in values:
        values["cache"] = values["cache"].strip().lower() not in _FALSE
    return values


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WfError(INVALID_CONFIG, f"{CONFIG_FILE} is not valid YAML: {exc}".splitlines()[0],
                      f"fix {path}; every key is optional (store, paths, deploy_branch, dags_prefix, airflow, cache)") from None
    if not isinstance(data, dict):
        raise WfError(INVALID_CONFIG, f"{CONFIG_FILE} must be a mapping", "write keys such as `paths: [workflows]`")
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise WfError(INVALID_CONFIG, f"{CONFIG_FILE}: unknown key(s) {', '.join(unknown)}",
                      f"allowed keys: {', '.join(sorted(_FILE_KEYS))}")
    values = {k: v for k, v in data.items() if k != "airflow"}
    airflow = data.get("airflow") or {}
    if not isinstance(airflow, dict) or "password" in airflow:
        raise WfError(INVALID_CONFIG, f"{CONFIG_FILE}: airflow must be a mapping of url and username",
                      "set the password only in the environment (WFCTL_AIRFLOW_PASSWORD), never in git")
    values.update({f"airflow_{k}": v for k, v in airflow.items()})
    if isinstance(values.get("paths"), str):
        values["paths"] = [values["paths"]]
    return values


def _check_paths(config: Config) -> None:
    paths = config.values["paths"]
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise WfError(INVALID_CONFIG, "paths must be a list of folders", "write e.g. `paths: [workflows]`")
    for rel in paths:
        resolved = (config.root / rel).resolve()
        if resolved != config.root.resolve() and config.root.resolve() not in resolved.parents:
            raise WfError(INVALID_CONFIG, f"path {rel!r} ({config.sources['paths']}) leaves the repository",
                          "list folders inside the repository root")
