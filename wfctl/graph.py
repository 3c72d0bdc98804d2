"""The task graph of a workflow spec: the one place that knows how groups,
tasks and ``depends_on`` fit together (validation and resolution share it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wfctl.loader import Path_


@dataclass
class Node:
    """A task or a group, with where it is declared (a path from the document root)."""

    name: str
    path: Path_
    body: dict[str, Any]
    group: str | None = None
    members: list[str] = field(default_factory=list)  # a group's tasks


@dataclass
class TaskGraph:
    tasks: dict[str, Node] = field(default_factory=dict)
    groups: dict[str, Node] = field(default_factory=dict)
    duplicates: list[Node] = field(default_factory=list)

    def node(self, name: str) -> Node | None:
        return self.tasks.get(name) or self.groups.get(name)

    def expand(self, target: str) -> list[str]:
        """A dependency target as task names: a group name means all its tasks."""
        group = self.groups.get(target)
        return list(group.members) if group else [target]

    def edges(self) -> Iterator[tuple[Node, int, str]]:
        """Every declared dependency: (declaring node, index in its depends_on, target)."""
        for node in (*self.groups.values(), *self.tasks.values()):
            for i, target in enumerate(_depends_on(node.body)):
                yield node, i, target

    def upstream(self, task: str) -> list[str]:
        """The tasks a task waits for: its own targets plus its group's, expanded."""
        node = self.tasks[task]
        targets = list(_depends_on(node.body))
        if node.group:
            targets += _depends_on(self.groups[node.group].body)
        out: list[str] = []
        for target in targets:
            for name in self.expand(target):
                if name in self.tasks and name != task and name not in out:
                    out.append(name)
        return out


def _depends_on(body: dict[str, Any]) -> list[str]:
    deps = body.get("depends_on")
    return [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []


def _dicts(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                yield i, item


def build(spec: dict[str, Any]) -> TaskGraph:
    """Index groups and tasks by name; later declarations of a taken name are duplicates."""
    graph = TaskGraph()

    def add(node: Node, table: dict[str, Node]) -> bool:
        if node.name in graph.tasks or node.name in graph.groups:
            graph.duplicates.append(node)
            return False
        table[node.name] = node
        return True

    for gi, group in _dicts(spec.get("groups")):
        gnode = Node(group["name"], ("spec", "groups", gi), group)
        if not add(gnode, graph.groups):
            continue
        for ti, task in _dicts(group.get("tasks")):
            tnode = Node(task["name"], ("spec", "groups", gi, "tasks", ti), task, group=gnode.name)
            if add(tnode, graph.tasks):
                gnode.members.append(tnode.name)
    for ti, task in _dicts(spec.get("tasks")):
        add(Node(task["name"], ("spec", "tasks", ti), task), graph.tasks)
    return graph
