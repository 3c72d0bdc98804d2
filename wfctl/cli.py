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
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from wfctl import __version__
from wfctl import config as config_mod
from wfctl.diagnostics import Report
from wfctl.errors import EXIT_FAILED, EXIT_OK, INTERNAL, USAGE, ValidationFailed, WfError
from wfctl.store.base import Store

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

    def open_store(self, config: config_mod.Config) -> Store:
        from wfctl.store.url import open_store

        store: Store = open_store(config.store_url, endpoint_url=config.values["endpoint_url"])
        return store

    def warn(self, message: str) -> None:
        self.log(click.style(message, fg="yellow") if self.color else message, level=0)

    def echo_json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))

    def emit(self, output: str, value: Any, text: Callable[[], str]) -> None:
        """The command's result: as JSON, or as the text ``text()`` makes of it."""
        if output == "json":
            self.echo_json(value)
        else:
            click.echo(text())

    @contextmanager
    def progress(self, label: str) -> Iterator[Callable[[int, int], None] | None]:
        """A progress bar on a terminal (stderr); nothing at all otherwise."""
        if not sys.stderr.isatty() or self.verbosity < 0:
            yield None
            return
        lock = threading.Lock()
        with click.progressbar(length=1, label=label, file=sys.stderr) as bar:
            def advance(done: int, total: int) -> None:
                with lock:
                    bar.length = total
                    bar.update(done)

            yield advance

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
    report, root = (exc.report, exc.root) if isinstance(exc, ValidationFailed) else (None, ".")
    if output == "json":
        body: dict[str, Any] = exc.to_json()
        if isinstance(report, Report):
            body["diagnostics"] = [d.to_json() for d in report.diagnostics]
        click.echo(json.dumps(body, indent=2))
    elif isinstance(report, Report):
        from wfctl import formats

        click.echo(formats.render(report, "text", repo_root=Path(str(root))), err=True)
    click.echo(f"error[{exc.code}]: {exc.message}", err=True)
    click.echo(f"hint: {exc.hint}", err=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wfctl")
@click.option("--repo", type=click.Path(path_type=Path), help="Repo root (default: the git root of the working directory).")
@click.option("--store", help="Store URL: s3://BUCKET/PREFIX, a directory or file://PATH (env WFCTL_STORE).")
@click.option("--endpoint-url", help="S3-compatible endpoint (or AWS_ENDPOINT_URL_S3).")
@click.option("--no-color", "no_color", is_flag=True, default=False, help="Never colour output (also NO_COLOR=1).")
@click.option("--no-cache", "no_cache", is_flag=True, default=False,
              help="Analyse every file afresh, ignoring .wfctl/cache (also WFCTL_CACHE=0).")
@click.option("-v", "--verbose", count=True, help="More detail on stderr; -vv shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, store: str | None, endpoint_url: str | None,
        no_color: bool, no_cache: bool, verbose: int, quiet: bool) -> None:
    """wfctl: validate, plan and publish workflows-as-code."""
    flags = {"store": store, "endpoint_url": endpoint_url, "cache": False if no_cache else None}
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
    result = validation.validate(config, focus, jobs, related=bool(changed_since))
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
@click.option("--ci", "ci", type=click.Choice(["github"]), help="Also write CI workflows (PR checks and deploys).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@pass_state
def init(state: State, directory: Path, ci: str | None, force: bool) -> None:
    """Scaffold a workflows repo that validates clean (editor schemas included)."""
    from wfctl import scaffold

    for path in scaffold.init(directory, force=force, ci=ci):
        state.log(f"wrote {path}", level=0)


# --- GitOps: plan, publish and the store -------------------------------------------


@cli.command()
@output_option("text", "json", "markdown")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 no changes, 2 changes, 4 deletes or override flips.")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Save the plan for `publish --plan FILE`.")
@click.option("--against", metavar="REF", help="Diff against the repo at a git ref instead of the store.")
@click.option("--snapshot", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Diff against a `wfctl snapshot` file (no store access, no credentials).")
@pass_state
def plan(state: State, output: str, detailed_exitcode: bool, out: Path | None, against: str | None,
         snapshot: Path | None) -> None:
    """Show what a publish would change, like `terraform plan`."""
    from wfctl import deploy, gitinfo, plan_format

    config = state.config()
    planned, _ = deploy.plan(config, lambda: state.open_store(config), against=against, snapshot=snapshot)
    click.echo(plan_format.render(planned, output, color=state.color))
    if out:
        git = _git_or_none(gitinfo, config)
        out.write_text(deploy.dumps(planned.to_saved(git)) + "\n", encoding="utf-8")
        state.log(f"saved the plan to {out}; publish it with `wfctl publish --plan {out}`", level=0)
    _write_step_summary(plan_format.markdown(planned))
    sys.exit(planned.detailed_exit_code() if detailed_exitcode else EXIT_OK)


def _git_or_none(gitinfo: Any, config: config_mod.Config) -> dict[str, Any] | None:
    try:
        return dict(gitinfo.state(config.root, config.values["paths"]).to_json())
    except WfError:
        return None


def _write_step_summary(markdown: str) -> None:
    """In GitHub Actions, every plan and publish also lands in the job's summary page."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n\n")


@cli.command()
@output_option("text", "json")
@click.option("--dry-run", is_flag=True, help="Check and plan, but write nothing.")
@click.option("--expect-version", type=int, metavar="N", help="Fail (exit 3) unless the live version is N.")
@click.option("--plan", "plan_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Publish exactly a plan saved with `plan --out`; refused if the store moved since.")
@click.option("--allow-dirty", is_flag=True, help="Publish even with uncommitted changes.")
@click.option("--allow-branch", is_flag=True, help="Publish from a branch other than deploy_branch.")
@click.option("--allow-deletes", is_flag=True, help="Allow deleting more than half of the live workflows.")
@click.option("--force", is_flag=True, help="Publish even if the live version came from a commit HEAD does not contain.")
@pass_state
def publish(state: State, output: str, dry_run: bool, expect_version: int | None, plan_file: Path | None,
            allow_dirty: bool, allow_branch: bool, allow_deletes: bool, force: bool) -> None:
    """Validate, then publish the repo as a new CODE version."""
    from wfctl import deploy, doctor

    config = state.config()
    store = state.open_store(config)
    options = deploy.PublishOptions(dry_run, expect_version, plan_file, allow_dirty, allow_branch, allow_deletes, force)
    if not dry_run:
        doctor.require_conditional_writes(store)
    with state.progress("uploading") as progress:
        options.progress = progress
        outcome = deploy.publish(config, store, options, state.warn)
    _print_outcome(state, output, outcome, "publish")


def _print_outcome(state: State, output: str, outcome: Any, verb: str) -> None:
    if output == "json":
        state.echo_json(outcome.to_json())
        return
    if outcome.plan is not None and (outcome.dry_run or state.verbosity > 0):
        from wfctl import plan_format

        click.echo(plan_format.text(outcome.plan, state.color))
    s = outcome.summary
    counts = f"{s['create']} created, {s['update']} updated, {s['delete']} deleted, {s['unchanged']} unchanged"
    if outcome.dry_run:
        click.echo(f"Dry run: nothing written. The {verb} would make version {(outcome.version or 0) + 1} ({counts}).")
    elif outcome.published:
        click.echo(f"Published CODE version {outcome.version} (previous: {outcome.previous_version}): {counts}.")
        _write_step_summary(f"### wfctl {verb}\n\nPublished CODE version **{outcome.version}** ({counts}).")
    else:
        click.echo(f"No changes: CODE version {outcome.version} is already live.")


@cli.command()
@click.argument("name", required=False)
@output_option("text", "json")
@click.option("--source", type=click.Choice(["code", "manual"]), default="code", show_default=True)
@pass_state
def history(state: State, name: str | None, output: str, source: str) -> None:
    """Published versions, newest first (with NAME: those that changed it)."""
    from wfctl import views

    config = state.config()
    result = views.history(state.open_store(config), source.upper(), name)
    if output == "json":
        state.echo_json(result)
        return
    for row in result["versions"]:
        changed = ", ".join(f"{k} {len(v)}" for k, v in row["summary"].items() if v) or "no changes"
        commit = (row["git_commit"] or "-")[:12]
        click.echo(f"{row['version']:>5}  {row['created_at']}  {row['publisher']:<20} {commit:<12}  {changed}")
    if not result["versions"]:
        click.echo(f"Nothing published under {source} yet.")


@cli.command()
@click.argument("name")
@click.option("--version", "version", type=int, help="A past version (default: live).")
@click.option("--source", type=click.Choice(["code", "manual"]), default="code", show_default=True)
@output_option("text", "json")
@pass_state
def show(state: State, name: str, version: int | None, source: str, output: str) -> None:
    """The deployed, resolved definition of a workflow."""
    from wfctl import views

    config = state.config()
    result = views.show(state.open_store(config), _checked_name(name), version, source.upper())
    if output == "json":
        state.echo_json(result)
        return
    click.echo(f"# {result['name']}: {result['source']} version {result['version']}, sha256 {result['sha256']}")
    click.echo(f"# from {result['source_path']}")
    import yaml

    click.echo(yaml.safe_dump(result["definition"], sort_keys=True, allow_unicode=True).rstrip())


def _checked_name(name: str) -> str:
    """Names reach store keys: refuse anything but a valid name before any access."""
    from wfctl.names import check_name

    return check_name(name)


@cli.command()
@click.option("--to", "to", type=click.IntRange(min=1), required=True, metavar="N", help="The version to restore.")
@output_option("text", "json")
@pass_state
def rollback(state: State, to: int, output: str) -> None:
    """Publish a new CODE version whose content equals version N."""
    from wfctl import deploy, doctor

    config = state.config()
    store = state.open_store(config)
    doctor.require_conditional_writes(store)
    _print_outcome(state, output, deploy.rollback(config, store, to), "rollback")


@cli.command()
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="File to write.")
@pass_state
def snapshot(state: State, out: Path) -> None:
    """Save the live CODE and MANUAL state for `plan --snapshot` (no credentials needed)."""
    from wfctl import deploy, views

    config = state.config()
    data = views.snapshot(state.open_store(config))
    out.write_text(deploy.dumps(data) + "\n", encoding="utf-8")
    state.log(f"wrote {out}: CODE version {data['code']['version']}, MANUAL version {data['manual']['version']}", level=0)


@cli.command()
@click.option("--verify", is_flag=True, help="Also audit the whole store: every version, object, and effective/.")
@output_option("text", "json")
@pass_state
def doctor(state: State, verify: bool, output: str) -> None:
    """Check config, credentials and the store (including conditional writes)."""
    from wfctl import doctor as doctor_mod

    config = state.config()
    checks = doctor_mod.run(config, lambda: state.open_store(config))
    if verify and all(c.ok for c in checks):
        checks += doctor_mod.verify(config, state.open_store(config))
    ok = all(c.ok for c in checks)
    if output == "json":
        state.echo_json({"ok": ok, "checks": [c.to_json() for c in checks]})
    else:
        for c in checks:
            mark = click.style("ok  ", fg="green") if c.ok and state.color else ("ok  " if c.ok else "FAIL")
            click.echo(f"{mark} {c.name:<20} {c.detail}")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


# --- operators: MANUAL registrations, pause, list, status -----------------------------


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace workflows that are already registered.")
@output_option("text", "json")
@pass_state
def register(state: State, files: tuple[Path, ...], force: bool, output: str) -> None:
    """Register (or with --force replace) MANUAL workflows from FILES."""
    from wfctl import manual

    config = state.config()
    outcome = manual.register(config, state.open_store(config), list(files), force)
    _print_manual(state, output, outcome)


@cli.command()
@click.argument("name")
@output_option("text", "json")
@pass_state
def unregister(state: State, name: str, output: str) -> None:
    """Remove NAME from the live MANUAL set (its versions stay in history)."""
    from wfctl import manual

    config = state.config()
    _print_manual(state, output, manual.unregister(config, state.open_store(config), name))


def _print_manual(state: State, output: str, outcome: Any) -> None:
    if output == "json":
        state.echo_json(outcome.to_json())
    elif outcome.published:
        changed = ", ".join(f"{k}: {', '.join(v)}" for k, v in outcome.changes.items() if v)
        previous = f" (previous: {outcome.previous_version})" if outcome.previous_version else ""
        click.echo(f"Published MANUAL version {outcome.version}{previous}; {changed}.")
    else:
        click.echo(f"No changes: MANUAL version {outcome.version} already has this content.")


def _pause_command(paused: bool) -> Callable[..., None]:
    verb = "pause" if paused else "unpause"

    @click.argument("name")
    @click.option("--source", type=click.Choice(["manual"]), help="Act on the MANUAL registration of NAME.")
    @output_option("text", "json")
    @pass_state
    def command(state: State, name: str, source: str | None, output: str) -> None:
        from wfctl import manual, operations

        config = state.config()
        result = manual.set_paused(config, state.open_store(config), name, paused, source.upper() if source else None)
        result["airflow_updated"] = operations.propagate_pause(config, name, paused)
        _print_status(state, output, result)

    command.__doc__ = f"{verb.capitalize()} the effective workflow NAME (operator state survives deploys)."
    return command


cli.command("pause")(_pause_command(True))
cli.command("unpause")(_pause_command(False))


@cli.command("list")
@click.option("--source", type=click.Choice(["code", "manual"]), help="Only one source.")
@click.option("--status", "status_", type=click.Choice(["active", "paused", "overridden"]), help="Only one status.")
@click.option("--owner", help="Only workflows of this owner.")
@output_option("text", "json")
@pass_state
def list_(state: State, source: str | None, status_: str | None, owner: str | None, output: str) -> None:
    """The live view: one row per source and name."""
    from wfctl import manual

    config = state.config()
    rows = manual.list_rows(state.open_store(config), source.upper() if source else None, status_, owner)
    if output == "json":
        state.echo_json({"workflows": [r.to_json() for r in rows]})
        return
    click.echo(f"{'NAME':<24} {'SOURCE':<6} {'STATUS':<10} {'VER':>4} {'OWNER':<12} SCHEDULE")
    for r in rows:  # 80 columns: long values are cut with ~ (-o json has them whole)
        click.echo(f"{_fit(r.name, 24)} {r.source:<6} {r.status:<10} {r.version:>4} {_fit(r.owner, 12)} "
                   f"{_fit(r.schedule or '-', 19).rstrip()}")
    if not rows:
        click.echo("(no workflows)")


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "~"


@cli.command()
@click.argument("name")
@click.option("--source", type=click.Choice(["code", "manual"]), help="Show this source's entry.")
@output_option("text", "json")
@pass_state
def status(state: State, name: str, source: str | None, output: str) -> None:
    """One workflow: source, status and why, versions, who changed it, next runs."""
    from wfctl import manual

    config = state.config()
    _print_status(state, output, manual.status(state.open_store(config), name, source.upper() if source else None))


def _print_status(state: State, output: str, result: dict[str, Any]) -> None:
    if output == "json":
        state.echo_json(result)
        return
    changed = result.get("changed") or {}
    lines = [
        f"{result['name']}: {result['status']} ({result['source']} version {result['version']})",
        f"  why:       {result['reason']}",
        f"  versions:  CODE {result['versions']['code'] or '-'}, MANUAL {result['versions']['manual'] or '-'}",
        f"  owner:     {result['owner']}",
        f"  schedule:  {result['schedule'] or 'none (manual trigger only)'}",
        f"  changed:   version {changed.get('version', '?')} by {changed.get('by', '?')} at {changed.get('at', '?')}",
    ]
    if result["next_runs"]:
        lines.append(f"  next runs: {', '.join(result['next_runs'])}")
    click.echo("\n".join(lines))


# --- Airflow ------------------------------------------------------------------------------


@cli.command()
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), help="Folder (default: .wfctl/dags).")
@pass_state
def render(state: State, out: Path | None) -> None:
    """Render the repo's workflows as Airflow DAG files."""
    from wfctl.render import render_repo

    config = state.config()
    folder = out or config.root / ".wfctl" / "dags"
    written = render_repo(config, folder)
    click.echo(f"Rendered {len(written)} DAG file(s) into {folder}.")


@cli.command()
@click.argument("name")
@click.option("--next", "count", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many runs.")
@output_option("text", "json")
@pass_state
def schedule(state: State, name: str, count: int, output: str) -> None:
    """The next run times of NAME in its timezone (the repo's definition, else the deployed one)."""
    from wfctl.deploy import validated
    from wfctl.schedules import next_runs, to_utc

    config = state.config()
    workflow = validated(config).workflows.get(_checked_name(name))
    if workflow is not None:
        definition, where = workflow.definition, workflow.source_path
    else:
        from wfctl import manual

        shown = manual.effective_definition(state.open_store(config), name)
        definition, where = shown["definition"], f"{shown['source']} version {shown['version']}"
    plan = definition["spec"]["schedule"]
    runs = next_runs(plan, count)
    if output == "json":
        state.echo_json({"name": name, "from": where, "schedule": plan, "next_runs": [to_utc(r) for r in runs]})
    elif plan is None:
        click.echo(f"{name} has no schedule: it runs only when triggered (`wfctl run {name}`).")
    else:
        click.echo(f"{name}: {plan['cron']} in {plan['timezone']} ({where})")
        click.echo("\n".join(f"  {run}" for run in runs) or "  no more runs (past end_date)")


@cli.command()
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A run parameter (checked against the workflow's params).")
@click.option("--conf", "conf", metavar="JSON", help="Extra run conf as a JSON object.")
@click.option("--logical-date", help="ISO date-time of the run (default: now, so {{ ds }} works).")
@output_option("text", "json")
@pass_state
def run(state: State, name: str, params: tuple[str, ...], conf: str | None, logical_date: str | None, output: str) -> None:
    """Trigger a run of the live workflow NAME in Airflow."""
    from wfctl import operations
    from wfctl.airflow_client import parse_conf, parse_param_args

    config = state.config()
    result = operations.trigger(config, state.open_store(config), name, parse_param_args(params), parse_conf(conf),
                                logical_date)
    state.emit(output, result, lambda: f"Started run {result['run_id']} of {name} ({result['state']}); "
                                       f"it records {result['wfctl']}.")


@cli.command()
@click.argument("name")
@click.option("--from", "start", required=True, metavar="DATE", help="First logical date (inclusive).")
@click.option("--to", "end", required=True, metavar="DATE", help="Last logical date (inclusive).")
@click.option("--dry-run", is_flag=True, help="List the dates that would run.")
@click.option("--max-active-runs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at once (1 keeps dates in order).")
@output_option("text", "json")
@pass_state
def backfill(state: State, name: str, start: str, end: str, dry_run: bool, max_active_runs: int, output: str) -> None:
    """Run NAME for every scheduled date between --from and --to."""
    from wfctl import operations

    config = state.config()
    result = operations.backfill(config, state.open_store(config), name, start, end, dry_run=dry_run,
                                 max_active_runs=max_active_runs)
    state.emit(output, result, lambda: "\n".join([f"Would run {name} for:", *(f"  {d}" for d in result["logical_dates"])])
               if dry_run else f"Backfill {result.get('id')} of {name} created for {start} .. {end}.")


@cli.command()
@click.argument("name")
@click.argument("run_id")
@output_option("text", "json")
@pass_state
def stop(state: State, name: str, run_id: str, output: str) -> None:
    """Stop a running run (marks it failed; Airflow kills its tasks)."""
    from wfctl import operations

    result = operations.stop(state.config(), name, run_id)
    state.emit(output, result, lambda: f"{run_id}: stopped" if result.get("stopped")
               else f"{run_id}: already finished ({result.get('state')})")


@cli.command()
@click.argument("name")
@click.argument("run_id", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=25, show_default=True)
@output_option("text", "json")
@pass_state
def runs(state: State, name: str, run_id: str | None, limit: int, output: str) -> None:
    """Run history of NAME (with the definition each run used), or one run's task states."""
    from wfctl import operations

    result = operations.runs(state.config(), name, run_id, limit)
    if output == "json":
        state.echo_json(result)
        return
    if run_id is None:
        for r in result["runs"]:
            used = r.get("wfctl") or {}
            click.echo(f"{r['run_id']:<48} {r['state'] or '-':<8} {r.get('start_date') or '-':<26} "
                       f"{used.get('source', '-')} v{used.get('version', '-')}")
        return
    r = result["run"]
    click.echo(f"{r['run_id']}: {r['state']} (started {r.get('start_date')}, ended {r.get('end_date')})")
    for t in result["tasks"]:
        click.echo(f"  {t['task_id']:<40} {t.get('state') or '-':<10} try {t.get('try_number')}")


# --- tooling ------------------------------------------------------------------------------


@cli.command()
@click.argument("kind", required=False, type=click.Choice(["workflow", "component", "workflowtemplate"], case_sensitive=False))
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), help="Write every schema into a folder.")
def schema(kind: str | None, out: Path | None) -> None:
    """Print the JSON Schema of a document kind (for editors), or write them all."""
    from wfctl import schemas

    if out is not None:
        for path in schemas.write_all(out):
            click.echo(f"wrote {path}", err=True)
        return
    chosen = schemas.kind_named(kind or "workflow")
    click.echo(json.dumps(schemas.schema(chosen), indent=2, ensure_ascii=False))


@cli.command("config")
@output_option("text", "json")
@pass_state
def config_command(state: State, output: str) -> None:
    """The effective configuration and where each value came from (secrets redacted)."""
    config = state.config()
    described = {"repo": {"value": str(config.root), "source": "flag" if state.repo else "git root"},
                 "store_url": {"value": config.store_url, "source": config.sources["store"]},
                 **config.describe()}
    if output == "json":
        state.echo_json(described)
        return
    for key, item in described.items():
        click.echo(f"{key:<18} {item['value']!s:<50} ({item['source']})")


def main() -> None:
    cli(prog_name="wfctl")
