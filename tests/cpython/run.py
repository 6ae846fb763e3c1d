#!/usr/bin/python3
"""CPython's own regression tests for what the shim touches, run without and
with it: a peer's suite written by people who never heard of the shim.

The modules below (sockets, subprocess, os, posix, signals, asyncio) are run
by CPython's test runner (Debian package libpython3.11-testsuite) twice, the
second time with LD_PRELOAD=libsafeclose.so, which every child process the
tests start inherits. Each run writes a JUnit file; the verdict compares the
sets of test cases that failed or erred: with the shim, nothing may fail that
passed without it. Failed cases are re-run once by the runner (-w) in both
runs alike, so a timing-sensitive case that fails once in either run is not
taken for a behaviour change. The two runs go side by side (each in a
directory of its own), so both see the same load; this halves the time.

usage: run.py LIBSAFECLOSE.so
"""

import concurrent.futures
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

PYTHON = "/usr/bin/python3"
MODULES = ["test_socket", "test_subprocess", "test_os", "test_posix",
           "test_signal", "test_asyncio"]
# AF_VSOCK tests block in accept() on a VM without a vsock peer, with or
# without the shim: they test the hypervisor, not close().
IGNORE = ["*VSOCK*", "*Vsock*", "*vsock*"]


def failed_cases(junit_path):
    """Names of the test cases that failed or erred in the final attempt."""
    if not os.path.exists(junit_path):
        return None
    failed, passed = set(), set()
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        name = "%s.%s" % (case.get("classname"), case.get("name"))
        bad = case.find("failure") is not None or case.find("error") is not None
        (failed if bad else passed).add(name)
    # With -w a case that failed and then passed on the re-run appears twice.
    return failed - passed


def run(env, parent, label):
    workdir = os.path.join(parent, label)
    os.mkdir(workdir)
    junit = os.path.join(workdir, label + ".xml")
    argv = [PYTHON, "-m", "test", "-j2", "--timeout", "300", "-w",
            "--junit-xml", junit] + sum((["-i", p] for p in IGNORE), []) + MODULES
    p = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True,
                       timeout=1800)
    tail = "\n".join(p.stdout.splitlines()[-15:])
    print("== %s: rc %d\n%s" % (label, p.returncode, tail), flush=True)
    return failed_cases(junit)


def main():
    # An LD_PRELOAD list (a sanitizer's runtime first: make sanitized-cpython).
    shim = ":".join(os.path.abspath(p) for p in sys.argv[1].split(":"))
    base = {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith("SAFECLOSE_")}
    with tempfile.TemporaryDirectory(prefix="safeclose-cpython-") as d:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            plain = pool.submit(run, base, d, "without-the-shim")
            shimmed = pool.submit(run, dict(base, LD_PRELOAD=shim), d, "with-the-shim")
            plain, shimmed = plain.result(), shimmed.result()
    if plain is None or shimmed is None:
        print("cpython: a run wrote no JUnit report")
        return 1
    new = sorted(shimmed - plain)
    print("cpython: %d failed without the shim, %d with it, %d only with it"
          % (len(plain), len(shimmed), len(new)))
    for name in new:
        print("  only with the shim: " + name)
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
