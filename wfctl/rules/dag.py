"""WF300-WF305: the tasks of a workflow must form a DAG."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from wfctl import rules
from wfctl.diagnostics import Diagnostic
from wfctl.graph import Node, TaskGraph, build
from wfctl.model import WorkflowView


def check(view: WorkflowView) -> list[Diagnostic]:
    graph = build(view.spec)
    out = list(_duplicates(view, graph))
    out += _edges(view, graph)
    out += _cycles(view, graph)
    if not graph.tasks:
        file, pos = view.locate(("spec",), key=True)
        out.append(rules.EMPTY_WORKFLOW.at(file, pos, f"workflow {view.name!r} has no tasks",
                                           "add at least one task under spec.tasks or spec.groups[].tasks"))
    return out


def _duplicates(view: WorkflowView, graph: TaskGraph) -> Iterator[Diagnostic]:
    for node in graph.duplicates:
        first = graph.node(node.name)
        assert first is not None
        file, pos = view.locate((*node.path, "name"))
        _, first_pos = view.locate((*first.path, "name"))
        yield rules.DUPLICATE_TASK.at(
            file, pos, f"name {node.name!r} is already used at line {first_pos[0]} (tasks and groups share one namespace)",
            "rename one of them: task and group names must be unique within a workflow")


def _edges(view: WorkflowView, graph: TaskGraph) -> Iterator[Diagnostic]:
    seen: set[tuple[str, str]] = set()
    names = sorted({*graph.tasks, *graph.groups})
    for node, i, target in graph.edges():
        file, pos = view.locate((*node.path, "depends_on", i))
        if _is_self(graph, node, target):
            yield _self(file, pos, node, target)
        elif graph.node(target) is None:
            close = difflib.get_close_matches(target, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            yield rules.UNKNOWN_DEPENDENCY.at(
                file, pos, f"{node.name!r} depends on {target!r}, which is no task or group of this workflow",
                hint + f"depend on one of: {', '.join(names)}")
        elif (node.name, target) in seen:
            yield rules.DUPLICATE_DEPENDENCY.at(file, pos, f"{node.name!r} lists {target!r} in depends_on twice",
                                                "remove the repeated entry")
        seen.add((node.name, target))


def _is_self(graph: TaskGraph, node: Node, target: str) -> bool:
    """A task naming itself or its own group, or a group naming one of its tasks."""
    if target in (node.name, node.group):
        return True
    return graph.groups.get(node.name) is node and target in node.members


def _self(file: str, pos: tuple[int, int], node: Node, target: str) -> Diagnostic:
    what = "itself" if target == node.name else f"{target!r}, which contains it or is part of it"
    return rules.SELF_DEPENDENCY.at(file, pos, f"{node.name!r} depends on {what}",
                                    "remove the entry: a task cannot wait for itself")


def _cycles(view: WorkflowView, graph: TaskGraph) -> Iterator[Diagnostic]:
    upstream = {name: graph.upstream(name) for name in graph.tasks}
    for cycle in find_cycles(upstream):
        first = graph.tasks[cycle[0]]
        file, pos = view.locate((*first.path, "depends_on"), key=True)
        path = " -> ".join([*cycle, cycle[0]])
        yield rules.CYCLE.at(file, pos, f"dependency cycle: {path}",
                             "remove one depends_on entry on this path so that the tasks form a DAG")


def find_cycles(upstream: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected component, in run order (upstream first).

    Iterative Tarjan, so a 10,000-task chain cannot hit the recursion limit.
    """
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, ups in upstream.items():
        for up in ups:
            downstream[up].append(name)
    cycles = []
    for scc in _sccs(downstream):
        if len(scc) > 1:
            cycles.append(_cycle_in(sorted(scc)[0], set(scc), downstream))
    return sorted(cycles)


def _sccs(graph: dict[str, list[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            succ = graph[node]
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    scc.append(member)
                    if member == node:
                        break
                out.append(scc)
    return out


def _cycle_in(start: str, members: set[str], graph: dict[str, list[str]]) -> list[str]:
    """A shortest cycle through ``start`` inside one component (BFS back to it)."""
    parents: dict[str, str] = {}
    queue = [start]
    for node in queue:
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return path[::-1]
            if nxt in members and nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return [start]
