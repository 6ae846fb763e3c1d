"""The settings file: conf/safeclose.conf is what the settings table
generates, it is found as SAFECLOSE_CONF and then /etc/safeclose.conf, an
environment variable overrides its line, a bad line is one message and the
program runs on, and the file is read once, at start-up."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from harness.deps import require_root
from harness.userns import unshare
from test_shim_basics import run

LOADED = re.compile(r"loaded: mode (\w+), linger (\w+), (\d+) ms at most, idle (\d+) ms")


def loaded(stderr):
    """(mode, linger, linger_ms, idle_ms) from the shim's start-up line."""
    m = LOADED.search(stderr)
    assert m, stderr
    return m.group(1), m.group(2), int(m.group(3)), int(m.group(4))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def test_conf_example_is_the_parser_table(build):
    generated = run([os.path.join(build.repo, "build", "safeclose-settings"), "--conf"]).stdout
    with open(os.path.join(build.repo, "conf", "safeclose.conf")) as f:
        assert f.read() == generated


def test_every_line_of_the_example_is_valid_and_the_default(build, tmp_path):
    with open(os.path.join(build.repo, "conf", "safeclose.conf")) as f:
        example = f.read()
    keys = re.findall(r"^#(\w+) = ", example, re.M)
    assert len(keys) >= 11
    uncommented = re.sub(r"^#(\w+ = )", r"\1", example, flags=re.M)
    conf = write(tmp_path / "all.conf", uncommented)
    p = run(["/bin/true"], {"LD_PRELOAD": build.shim, "SAFECLOSE_CONF": conf})
    assert (p.returncode, p.stderr) == (0, "")
    p = run(["/bin/true"], {"LD_PRELOAD": build.shim, "SAFECLOSE_CONF": conf,
                            "SAFECLOSE_LOG": "info"})
    assert loaded(p.stderr) == ("pending", "async", 30000, 5000)


def test_the_named_file_is_read_and_the_environment_overrides_it(build, tmp_path):
    conf = write(tmp_path / "s.conf", "mode = always\nidle_ms = 250\nlog = info\n")
    p = run(["/bin/true"], {"LD_PRELOAD": build.shim, "SAFECLOSE_CONF": conf})
    assert loaded(p.stderr) == ("always", "async", 30000, 250)
    p = run(["/bin/true"], {"LD_PRELOAD": build.shim, "SAFECLOSE_CONF": conf,
                            "SAFECLOSE_IDLE_MS": "99", "SAFECLOSE_LINGER": "sync"})
    assert loaded(p.stderr) == ("always", "sync", 30000, 99)


def in_private_etc(build, etc, argv, env):
    """Runs argv with etc mounted over /etc in a mount namespace of its own
    (so no other program on the machine sees the file; an ordinary user's in
    a user namespace of its own)."""
    script = 'mount --bind "$0" /etc && exec "$@"'
    return run(unshare("-m") + ["sh", "-c", script, str(etc)] + argv,
               dict(env, LD_PRELOAD=build.shim))


def test_etc_safeclose_conf_is_read_when_no_file_is_named(build, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    write(etc / "safeclose.conf", "idle_ms = 321\nlog = info\n")
    p = in_private_etc(build, etc, ["/bin/true"], {})
    assert loaded(p.stderr)[3] == 321
    named = write(tmp_path / "named.conf", "idle_ms = 654\nlog = info\n")
    p = in_private_etc(build, etc, ["/bin/true"], {"SAFECLOSE_CONF": named})
    assert loaded(p.stderr)[3] == 654
    p = in_private_etc(build, etc, ["/bin/true"], {"SAFECLOSE_IDLE_MS": "987"})
    assert loaded(p.stderr)[3] == 987


def test_no_file_at_all_is_silent(build, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    p = in_private_etc(build, etc, ["/bin/echo", "x"], {})
    assert (p.returncode, p.stdout, p.stderr) == (0, "x\n", "")


def test_a_bad_line_is_one_message_and_the_program_runs_on(build, tmp_path):
    conf = write(tmp_path / "bad.conf", "# settings\nmode = always\nidle_ms = soon\n")
    p = run(["/bin/echo", "still here"], {"LD_PRELOAD": build.shim, "SAFECLOSE_CONF": conf})
    assert (p.returncode, p.stdout) == (0, "still here\n")
    assert p.stderr.count("\n") == 1
    assert p.stderr.endswith(f"{conf}:3: idle_ms: 'soon' is not a number of ms "
                             "(0..3600000), using 5000\n")


def test_an_unknown_variable_names_the_closest_setting(build):
    p = run(["/bin/echo", "x"], {"LD_PRELOAD": build.shim, "SAFECLOSE_IDLE": "100"})
    assert (p.returncode, p.stdout) == (0, "x\n")
    assert p.stderr.endswith("SAFECLOSE_IDLE is not a setting, ignored "
                             "(the closest is SAFECLOSE_IDLE_MS)\n")


@pytest.mark.needs("strace")
def test_the_file_is_read_once_at_start_up(build, tmp_path):
    """fdops closes sockets of every kind, forks and uses threads: the file
    is opened once, by the constructor, and by nothing on a close path.
    (A heir takes over the connection fdops leaves open at exit; under
    strace it may wait out the linger bound before it sees its parent gone,
    so the bound is short here.)"""
    conf = write(tmp_path / "once.conf", "idle_ms = 200\nlinger_ms = 1000\n")
    trace = tmp_path / "trace"
    p = run(["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", str(trace),
             os.path.join(build.repo, "build", "fdops")],
            {"LD_PRELOAD": build.shim, "SAFECLOSE_CONF": conf})
    assert p.returncode == 0, p.stderr
    opens = [line for line in open(trace) if "once.conf" in line]
    assert len(opens) == 1, opens


@pytest.fixture
def public_tmp():
    """A directory the ordinary user can reach (pytest's own is root's only)."""
    path = tempfile.mkdtemp(prefix="safeclose-suid-")
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    shutil.rmtree(path)


def test_a_set_user_id_program_never_reads_a_file_its_caller_names(build, public_tmp):
    """Loaded into every program by /etc/ld.so.preload (a private /etc here),
    a set-user-ID program run by an ordinary user ignores SAFECLOSE_CONF:
    otherwise it would read a root-only file and echo its lines to stderr.
    Root only: it takes root to make a file set-user-ID to another user and
    to run it as one (an ordinary user's namespace maps no second uid)."""
    require_root("a set-user-ID program of another user")
    tmp_path = public_tmp
    secret = write(tmp_path / "secret", "root-only secret\n")
    os.chmod(secret, 0o600)
    suid = tmp_path / "suidtrue"
    subprocess.run(["cp", "/bin/true", str(suid)], check=True)
    os.chmod(suid, 0o4755)
    etc = tmp_path / "etc"
    etc.mkdir()
    write(etc / "ld.so.preload", build.shim + "\n")
    os.chmod(etc, 0o755)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "env", "SAFECLOSE_CONF=%s" % secret, "SAFECLOSE_LOG=info", str(suid)]
    script = 'mount --bind "$0" /etc && exec "$@"'
    p = subprocess.run(["unshare", "-m", "sh", "-c", script, str(etc)] + argv,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    # The library ran in the set-user-ID program, and read nothing it was named.
    assert p.stderr.count("loaded: mode pending") == 1, p.stderr
    assert "secret" not in p.stderr, p.stderr
