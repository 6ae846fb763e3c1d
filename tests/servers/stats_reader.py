#!/usr/bin/python3
"""Polls a directory of stats files while a server runs, as an operator's
collector would: every *.json in it is read and parsed, over and over, for
SECONDS. Prints one JSON line: how many reads, how many failed to parse (a
torn or half-written file), and the first failure."""

import json
import os
import sys
import time


def main():
    directory, seconds = sys.argv[1], float(sys.argv[2])
    reads = failures = 0
    first_failure = None
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in os.listdir(directory):
            if not name.endswith(".json"):
                continue        # a writer's temporary file, not yet renamed
            try:
                with open(os.path.join(directory, name)) as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            reads += 1
            try:
                obj = json.loads(text)
                seen.add((name, obj["written"]))
            except (ValueError, KeyError) as e:
                failures += 1
                first_failure = first_failure or "%s: %r: %r" % (name, e, text[:200])
        time.sleep(0.002)
    print(json.dumps({"reads": reads, "failures": failures, "versions": len(seen),
                      "first_failure": first_failure}))


if __name__ == "__main__":
    main()
