"""The command line: parse arguments, call library functions, print, exit.

Nothing here decides behaviour; every command's work is a function in the
package that tests call directly. This module only owns presentation: output
formats, colour, exit codes, and turning :class:`WfError` into
``error[WFnnn]: ...`` plus a hint (or the JSON error shape) without a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from wfctl import __version__
from wfctl import config as config_mod
from wfctl.errors import EXIT_FAILED, EXIT_OK, INTERNAL, USAGE, WfError

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """Global options, shared by every command through the click context."""

    def __init__(self, repo: Path | None, flags: dict[str, Any], color: bool | None, verbosity: int) -> None:
        self.repo = repo
        self.flags = flags
        self.color_flag = color
        self.verbosity = verbosity
        self.output = "text"

    def config(self) -> config_mod.Config:
        root = self.repo.resolve() if self.repo else config_mod.find_root(Path.cwd())
        if not root.is_dir():
            raise WfError(USAGE, f"--repo {self.repo} is not a directory", "pass the root folder of a workflows repo")
        return config_mod.load(root, self.flags)

    @property
    def color(self) -> bool:
        """Colour only on a terminal, never with NO_COLOR or --no-color."""
        if self.color_flag is False or os.environ.get("NO_COLOR"):
            return False
        return sys.stdout.isatty()

    def log(self, message: str, level: int = 1) -> None:
        """Logs go to stderr so that JSON on stdout stays parseable."""
        if self.verbosity >= level:
            click.echo(message, err=True)


def pass_state(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(click.get_current_context().find_object(State), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def output_option(*formats: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        def remember(ctx: click.Context, _param: click.Parameter, value: str) -> str:
            state = ctx.find_object(State)
            if state:
                state.output = value
            return value

        return click.option("-o", "--output", type=click.Choice(formats), default=formats[0], show_default=True,
                            callback=remember, is_eager=True, help="Output format.")(func)

    return decorate


class Group(click.Group):
    """Turns WfError into the documented error output and exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WfError as exc:
            state = ctx.find_object(State)
            if state and state.verbosity >= 2:
                traceback.print_exc()
            emit_error(exc, state.output if state else "text")
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug of ours: say so plainly, keep the traceback for -vv
            state = ctx.find_object(State)
            if state and state.verbosity >= 2:
                raise
            emit_error(WfError(INTERNAL, f"internal error: {type(exc).__name__}: {exc}",
                               "re-run with -vv for the traceback and report it to the wfctl maintainers"),
                       state.output if state else "text")
            ctx.exit(EXIT_FAILED)


def emit_error(exc: WfError, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(exc.to_json(), indent=2))
    click.echo(f"error[{exc.code}]: {exc.message}", err=True)
    click.echo(f"hint: {exc.hint}", err=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wfctl")
@click.option("--repo", type=click.Path(path_type=Path), help="Repo root (default: the git root of the working directory).")
@click.option("--store", help="Store URL: s3://BUCKET/PREFIX, a directory or file://PATH (env WFCTL_STORE).")
@click.option("--endpoint-url", help="S3-compatible endpoint (or AWS_ENDPOINT_URL_S3).")
@click.option("--no-color", "no_color", is_flag=True, default=False, help="Never colour output (also NO_COLOR=1).")
@click.option("-v", "--verbose", count=True, help="More detail on stderr; -vv shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, store: str | None, endpoint_url: str | None,
        no_color: bool, verbose: int, quiet: bool) -> None:
    """wfctl: validate, plan and publish workflows-as-code."""
    flags = {"store": store, "endpoint_url": endpoint_url}
    ctx.obj = State(repo, flags, False if no_color else None, -1 if quiet else verbose)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@output_option("text", "json", "github", "sarif", "junit")
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option("--changed-since", metavar="REF", help="Only documents changed since a git ref, and what they relate to.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), help="Worker processes (default: CPU count).")
@pass_state
def validate(state: State, paths: tuple[Path, ...], output: str, strict: bool, changed_since: str | None,
             jobs: int | None) -> None:
    """Check workflow documents: schema, DAG, references, schedules, YAML pitfalls."""
    from wfctl import formats, gitinfo
    from wfctl import validate as validation

    config = state.config()
    focus: list[str] | None = validation.focus_paths(config, paths) if paths else None
    if changed_since:
        changed = gitinfo.changed_files(config.root, changed_since)
        focus = [f for f in changed if focus is None or f in focus]
    result = validation.validate(config, focus, jobs)
    for skipped in result.skipped:
        state.log(f"skipped {skipped}: no wfctl/ document")
    click.echo(formats.render(result.report, output, repo_root=config.root, strict=strict, color=state.color))
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if output == "github" and summary_path:
        with open(summary_path, "a", encoding="utf-8") as handle:
            handle.write(formats.step_summary(result.report, strict=strict) + "\n")
    sys.exit(EXIT_OK if result.report.ok(strict) else EXIT_FAILED)


@cli.command()
@click.argument("directory", default=".", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@pass_state
def init(state: State, directory: Path, force: bool) -> None:
    """Scaffold a workflows repo that validates clean."""
    from wfctl import scaffold

    for path in scaffold.init(directory, force=force):
        state.log(f"wrote {path}", level=0)


def main() -> None:
    cli(prog_name="wfctl")
