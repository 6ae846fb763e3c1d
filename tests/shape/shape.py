#!/usr/bin/python3
"""The path calls take through the shim's files, read from a `make shape`
trace (tests/shape/trace.c): for each traced call, which files it enters
and how often, and the crossings in order. A file is entered when a function
of one file calls a function of another; the library's entry point (an
exported wrapper) is where the count starts.

    shape.py LIB TRACE [--top NAME ...] [--path]

Imported by tests/test_shape.py, which asserts the counts."""

import argparse
import collections
import subprocess
import sys
import os


def symbolize(lib, offsets):
    """offset -> (function, file) for each offset, by addr2line (the file
    the function's code is in, not where a header declares it)."""
    offsets = sorted(set(offsets))
    out = subprocess.run(["addr2line", "-f", "-e", lib] + ["%x" % o for o in offsets],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    names = {}
    for i, off in enumerate(offsets):
        func, where = out[2 * i], out[2 * i + 1]
        names[off] = (func, os.path.basename(where.split(":")[0]))
    return names


def records(trace):
    """Each record: (tid, cut, [(offset, depth), ...])."""
    with open(trace) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            cut = len(words) > 1 and words[1] == "cut"
            entries = [tuple(int(x, 16) if i == 0 else int(x)
                             for i, x in enumerate(w.split(":")))
                       for w in words[(2 if cut else 1):]]
            yield int(words[0]), cut, entries


def crossings(entries, names):
    """The calls from one file into another, in order: (caller, callee),
    each a (function, file)."""
    stack, out = [], []
    for off, depth in entries:
        del stack[depth:]
        callee = names[off]
        if stack and stack[-1][1] != callee[1]:
            out.append((stack[-1], callee))
        stack.append(callee)
    return out


def shape(lib, trace, tops=None):
    """[(top function, Counter of files entered, crossings)] for every
    record whose top function is in tops (all when None)."""
    recs = list(records(trace))
    names = symbolize(lib, [off for _, _, es in recs for off, _ in es])
    result = []
    for _, cut, entries in recs:
        if not entries:
            continue
        top = names[entries[0][0]][0]
        if tops is not None and top not in tops:
            continue
        if cut and tops is not None:
            raise ValueError("record of %s cut short" % top)
        cross = crossings(entries, names)
        result.append((top, collections.Counter(callee[1] for _, callee in cross), cross))
    return result


def describe(top, entered, cross, path=False):
    lines = ["%s: enters %d files %d times: %s" % (
        top, len(entered), sum(entered.values()),
        ", ".join("%s %d" % fc for fc in sorted(entered.items(), key=lambda x: -x[1])))]
    if path:
        lines += ["    %s (%s) -> %s (%s)" % (a[0], a[1], b[0], b[1]) for a, b in cross]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("trace")
    ap.add_argument("--top", action="append")
    ap.add_argument("--path", action="store_true")
    a = ap.parse_args()
    for top, entered, cross in shape(a.lib, a.trace, a.top):
        print(describe(top, entered, cross, a.path))


if __name__ == "__main__":
    sys.exit(main())
