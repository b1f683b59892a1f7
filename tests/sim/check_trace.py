#!/usr/bin/python3
"""Checks a Chrome/Perfetto trace against the Trace Event Format's rules.

Usage: check_trace.py TRACE.json [EXPECTED_TRACKS]
Rules (Trace Event Format, "JSON Object Format"): a top-level object with a traceEvents
list; every event has a name, a phase (ph), an integer pid and tid; timed events have a
numeric ts >= 0; complete events (X) a dur >= 0 and, per thread, proper nesting; async
events (b/e) a cat and an id, each begin matched by one end that is not earlier; metadata
events (M) name processes and threads. Exits non-zero with one line per violation.
"""
import json
import sys
from collections import defaultdict

ALLOWED_PHASES = {"X", "B", "E", "b", "e", "n", "i", "I", "M", "C", "s", "t", "f"}


def check(path, expected_gpus=None):
    errors = []
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        return ["top level must be an object with a traceEvents list"]
    events = doc["traceEvents"]
    slices = defaultdict(list)
    async_open = {}
    named_threads, used_threads = set(), set()
    for i, e in enumerate(events):
        where = f"event {i}"
        if not isinstance(e.get("name"), str):
            errors.append(f"{where}: missing name")
        ph = e.get("ph")
        if ph not in ALLOWED_PHASES:
            errors.append(f"{where}: bad ph {ph!r}")
            continue
        if not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"), int):
            errors.append(f"{where}: pid and tid must be integers")
            continue
        key = (e["pid"], e["tid"])
        if ph == "M":
            if e["name"] in ("process_name", "thread_name") and not isinstance(
                    e.get("args", {}).get("name"), str):
                errors.append(f"{where}: metadata without args.name")
            if e["name"] == "thread_name":
                named_threads.add(key)
            continue
        ts = e.get("ts")
        if not isinstance(ts, (int, float)) or ts < 0:
            errors.append(f"{where}: ts must be a number >= 0")
            continue
        used_threads.add(key)
        if ph == "X":
            dur = e.get("dur")
            if not isinstance(dur, (int, float)) or dur < 0:
                errors.append(f"{where}: X needs dur >= 0")
                continue
            slices[key].append((ts, dur, e["name"]))
        elif ph in ("b", "e"):
            if "cat" not in e or "id" not in e:
                errors.append(f"{where}: async event needs cat and id")
                continue
            akey = (e["cat"], e["id"], e["name"])
            if ph == "b":
                if akey in async_open:
                    errors.append(f"{where}: async begin {akey} opened twice")
                async_open[akey] = ts
            else:
                if akey not in async_open:
                    errors.append(f"{where}: async end {akey} without begin")
                elif ts < async_open.pop(akey):
                    errors.append(f"{where}: async end before its begin")
    for akey in async_open:
        errors.append(f"async begin {akey} never ended")
    eps = 1e-3  # microseconds: printing rounds to 1e-4
    for key, items in slices.items():
        items.sort(key=lambda x: (x[0], -x[1]))
        stack = []
        for ts, dur, name in items:
            while stack and ts >= stack[-1][1] - eps:
                stack.pop()
            if stack and ts + dur > stack[-1][1] + eps:
                errors.append(f"thread {key}: slice {name!r} at {ts} overlaps {stack[-1][2]!r} "
                              "without nesting")
            stack.append((ts, ts + dur, name))
    for key in used_threads - named_threads:
        errors.append(f"thread {key} has events but no thread_name")
    if expected_gpus is not None and len(named_threads) != expected_gpus:
        errors.append(f"expected {expected_gpus} tracks, found {len(named_threads)}")
    return errors


if __name__ == "__main__":
    problems = check(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
    for p in problems[:50]:
        print(p)
    if problems:
        sys.exit(1)
    print("trace ok")
