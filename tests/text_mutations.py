"""Line-level mutations of YAML text, shared by the fuzz and reliability suites.

A mutation is a tuple ``(op, *args)`` as the suites' hypothesis strategies draw them; indexes
wrap around, so any integer is a valid index into any text."""

from __future__ import annotations

from typing import Any


def mutate(text: str, mutations: list[tuple[Any, ...]]) -> str:
    """Apply each mutation in turn; indexes wrap around the current lines."""
    for op, *args in mutations:
        lines = text.split("\n")
        i = args[0] % len(lines) if op != "truncate" else 0
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = args[1] % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            at = args[1] % (len(lines[i]) + 1)
            lines[i] = lines[i][:at] + args[2] + lines[i][at:]
        elif op == "truncate":
            text = text[: args[0] % (len(text) + 1)]
            continue
        elif op == "indent":
            body = lines[i].lstrip(" ")
            lines[i] = " " * max(0, len(lines[i]) - len(body) + args[1]) + body
        elif op == "token":  # replace the scalar after `key: ` or `- `, else the line's last word
            line = lines[i]
            cut = max(line.find(": ") + 2 if ": " in line else -1, line.find("- ") + 2 if line.lstrip().startswith("- ") else -1)
            if cut < 2:
                cut = line.rstrip().rfind(" ") + 1
            lines[i] = line[:cut] + args[1]
        elif op == "line":
            lines.insert(i, " " * args[2] + args[1])
        text = "\n".join(lines)
    return text
