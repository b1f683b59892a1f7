#!/usr/bin/env python3
"""Checks that epsim's folders use each other only in the allowed direction.

    tools/check_layout.py            check the repository (run by tools/test.sh)
    tools/check_layout.py --self-test  show that it catches a wrong include and a cycle

Each folder below is one stage of the data flow (README "How the code is laid out"). A
folder may use (#include, or name in a BUILD file's deps) only the folders ALLOWED lists for
it, so that nothing below includes anything above (sim -> calibrate -> kernels -> common),
the simulator never links the calibrator's CUDA code, and the tests never depend on tools/.
It also reports any cycle between folders, and BUILD deps lists that are not sorted (local
":targets" first, then labels in order). Exit status 0 when all is well, 1 otherwise, with
one line per finding: FILE:LINE: what is wrong.
"""
import os
import re
import sys
import tempfile

# Who may use whom. Every folder may use itself and //third_party (system libraries).
# The order of this table is the order of the data flow, from the leaf to the top.
ALLOWED = {
    "common": [],
    "kernels": ["common"],
    "calibrate/profile": ["common"],
    "calibrate": ["calibrate/profile", "kernels", "common"],
    "sim/workload": ["common"],
    "sim/config": ["sim/workload", "calibrate/profile", "common"],
    "sim/traffic": ["sim/config", "sim/workload", "common"],
    "sim/engine": ["sim/traffic", "sim/config", "sim/workload", "calibrate/profile", "common"],
    "sim/report": ["sim/engine", "sim/traffic", "sim/config", "sim/workload", "calibrate/profile", "common"],
    "sim/simulation": ["sim/report", "sim/engine", "sim/config", "sim/workload", "common"],
    "sim/sweep": ["sim/simulation", "sim/config", "common"],
    "sim/cli": ["sim/sweep", "sim/simulation", "sim/report", "sim/config", "calibrate/profile", "common"],
    "sim": ["sim/cli", "topologies", "scenarios", "calibrate/profiles"],  # the binary and its data
    # Tests may use every source folder and the shared test helpers, but not tools/.
    "tests": ["sim", "sim/cli", "sim/sweep", "sim/simulation", "sim/report", "sim/engine", "sim/traffic",
              "sim/config", "sim/workload", "calibrate", "calibrate/profile", "kernels", "common",
              "topologies", "scenarios", "calibrate/profiles", "notebooks"],
    # Data folders: files only.
    "topologies": [], "scenarios": [], "calibrate/profiles": [], "notebooks": [], "third_party": [],
    "": ["sim", "calibrate"],  # the root BUILD's aliases
}
SOURCE_EXTENSIONS = (".h", ".cc", ".cu")
SKIP_DIRS = {".git", "tools", "docs"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
LABEL = re.compile(r'"(//[^":]*)(:[^"]*)?"|"@[^"]*"')


def folder_of(path):
    """The ALLOWED folder a repository path belongs to (the longest that contains it)."""
    path = path.strip("/")
    if path.startswith("tests/") or path == "tests":
        return "tests"
    best = ""
    for folder in ALLOWED:
        if folder and (path == folder or path.startswith(folder + "/")) and len(folder) > len(best):
            best = folder
    return best or path.split("/")[0]  # a folder the table does not know is reported as such


def edges_of(root):
    """(from folder, to folder, file, line) for every include and BUILD label in the tree."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = sorted(d for d in dirnames if not (rel_dir == "" and d in SKIP_DIRS)
                             and not d.startswith("bazel-") and not d.startswith("."))
        here = folder_of(rel_dir) if rel_dir else ""
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.join(rel_dir, name) if rel_dir else name
            if name.endswith(SOURCE_EXTENSIONS):
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if m and "/" in m.group(1):
                            found.append((here, folder_of(os.path.dirname(m.group(1))), rel, number))
            elif name in ("BUILD", "BUILD.bazel"):
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                for number, line in enumerate(text.splitlines(), 1):
                    if line.lstrip().startswith("#"):
                        continue
                    for m in LABEL.finditer(line):
                        if m.group(1) is None:
                            continue  # an external repository (@local_cuda, ...)
                        package, target = m.group(1)[2:], m.group(2) or ""
                        # Visibility grants (//x:__pkg__, //visibility:public) and select()
                        # keys (//conditions:default) use nothing.
                        if target.startswith(":__") or package in ("visibility", "conditions"):
                            continue
                        if package.startswith("third_party"):
                            continue
                        found.append((here, folder_of(package), rel, number))
    return found


def unsorted_deps(root):
    """BUILD deps lists out of buildifier's order: ':local' labels, then '//absolute' ones,
    then '@external' ones, each group sorted."""
    problems = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith("bazel-") and not d.startswith(".")]
        for name in filenames:
            if name not in ("BUILD", "BUILD.bazel"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for m in re.finditer(r"\bdeps\s*=\s*\[([^\]]*)\]", text):
                labels = re.findall(r'"([^"]+)"', m.group(1))
                key = [(0 if l.startswith(":") else 2 if l.startswith("@") else 1, l) for l in labels]
                if key != sorted(key):
                    line = text.count("\n", 0, m.start()) + 1
                    problems.append(f"{os.path.relpath(path, root)}:{line}: deps not sorted: {', '.join(labels)}")
    return problems


def cycles(edges):
    """Folder-level cycles among the edges, each as a list of folders."""
    graph = {}
    for a, b, _, _ in edges:
        if a != b:
            graph.setdefault(a, set()).add(b)
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def check(root):
    problems = []
    edges = edges_of(root)
    for a, b, path, line in edges:
        if a == b or b == "third_party":
            continue
        if a not in ALLOWED:
            problems.append(f"{path}:{line}: folder '{a}' is not in tools/check_layout.py's ALLOWED table")
        elif b not in ALLOWED[a]:
            problems.append(f"{path}:{line}: {a or 'the root'} uses {b or 'the root'}, "
                            f"which it may not (allowed: {', '.join(ALLOWED[a]) or 'nothing'})")
    for cycle in cycles(edges):
        problems.append("folder cycle: " + " -> ".join(cycle))
    problems += unsorted_deps(root)
    return problems


def self_test():
    """A tree with one wrong include and one cycle must fail; the same tree fixed must pass."""
    def write(root, rel, text):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    with tempfile.TemporaryDirectory() as root:
        write(root, "common/a.h", '#include "common/b.h"\n')
        write(root, "sim/engine/e.h", '#include "sim/config/c.h"\n')
        write(root, "sim/config/c.h", '#include "common/a.h"\n')
        write(root, "sim/BUILD", 'cc_binary(name = "epsim", deps = ["//sim/cli:commands"])\n')
        write(root, "sim/cli/BUILD", 'cc_library(name = "commands", deps = [":a", "//common:x", "//sim/config:c"])\n')
        clean = check(root)
        if clean:
            print("check_layout self-test: a clean tree was refused:\n  " + "\n  ".join(clean))
            return 1
        write(root, "common/a.h", '#include "sim/config/c.h"\n')         # below includes above
        write(root, "sim/config/d.h", '#include "sim/engine/e.h"\n')     # config <-> engine
        write(root, "sim/cli/BUILD", 'cc_library(name = "commands", deps = ["//sim/config:c", ":a"])\n')
        found = check(root)
        wanted = ["common/a.h:1: common uses sim/config", "sim/config/d.h:1: sim/config uses sim/engine",
                  "folder cycle:", "deps not sorted"]
        missing = [w for w in wanted if not any(w in p for p in found)]
        if missing:
            print("check_layout self-test: not caught: " + "; ".join(missing) + "\n  found: " + "\n  ".join(found))
            return 1
    print("check_layout self-test: a wrong include, a folder cycle and unsorted deps are caught")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layout: {len(problems)} problem(s); the allowed directions are in tools/check_layout.py")
        return 1
    print(f"check_layout: {len(edges_of(root))} includes and BUILD labels, all in the allowed direction, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
