"""The safeclose command: `safeclose -- PROGRAM` runs PROGRAM with the
library preloaded (LD_PRELOAD kept), the program's own pid, signals and exit
status; --check validates the settings the program would get."""

import os
import shutil
import signal
import subprocess

import pytest

from harness.checks import assert_clean, assert_failure_without_shim
from test_real_servers import nginx_spec, size
from test_shim_basics import run

LIBM = "/lib/x86_64-linux-gnu/libm.so.6"


def cmd(build):
    return os.path.join(build.repo, "build", "safeclose")


@pytest.mark.needs("nginx-light")
def test_the_wrapper_fixes_a_debian_server(netns_run, build, tmp_path, http_docroot):
    """nginx (lingering_close off) resets its clients; started by safeclose,
    with the settings in a conf file, every client gets the whole reply."""
    conf = tmp_path / "safeclose.conf"
    conf.write_text("ports = 8080\nlog = info\n")
    spec = nginx_spec(build, tmp_path, http_docroot, "off")
    without = netns_run(spec)
    assert_failure_without_shim(without, "http")
    spec["server"]["argv"] = [cmd(build), "--conf", str(conf), "--"] + spec["server"]["argv"]
    with_ = netns_run(spec)
    assert_clean(with_, "http", expect_length=size(http_docroot))
    assert "loaded: mode pending" in with_["server"]["stderr"]


def test_pid_signals_and_exit_status_are_the_programs(build):
    p = subprocess.Popen([cmd(build), "--", "sh", "-c", 'echo $$; exit 7'],
                         stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=30)
    assert (p.returncode, out) == (7, "%d\n" % p.pid)
    p = subprocess.Popen([cmd(build), "sh", "-c", 'echo $$; kill -TERM $$'],
                         stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=30)
    assert (p.returncode, out) == (-signal.SIGTERM, "%d\n" % p.pid)


def test_ld_preload_is_kept_and_the_library_added_once(build):
    show = ["sh", "-c", 'echo "$LD_PRELOAD"']
    p = run([cmd(build), "--"] + show, {"LD_PRELOAD": LIBM})
    assert (p.returncode, p.stdout, p.stderr) == (0, "%s:%s\n" % (LIBM, build.shim), "")
    # Run from a shell already under it: another copy is replaced, never doubled.
    p = run([cmd(build)] + show, {"LD_PRELOAD": "/old/libsafeclose.so %s" % LIBM})
    assert (p.returncode, p.stdout) == (0, "%s:%s\n" % (LIBM, build.shim))
    p = run([cmd(build)] + show, {"LD_PRELOAD": ""})
    assert p.stdout == build.shim + "\n"


def test_options_become_the_settings(build, tmp_path):
    conf = tmp_path / "s.conf"
    conf.write_text("idle_ms = 250\n")
    # A relative --conf is made absolute: the program may change directory.
    p = subprocess.run([cmd(build), "--mode", "always", "--conf", "s.conf", "sh", "-c",
                        'echo "$SAFECLOSE_MODE $SAFECLOSE_CONF"'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout, p.stderr) == (0, "always %s\n" % conf, "")


def test_check_prints_the_settings_and_passes(build, tmp_path):
    conf = tmp_path / "s.conf"
    conf.write_text("# ours\nidle_ms = 250\nports = 80,443\n")
    p = run([cmd(build), "--check", "--conf", str(conf)], {"SAFECLOSE_LINGER_MS": "100"})
    assert (p.returncode, p.stderr) == (0, "")
    assert "# library: %s\n" % build.shim in p.stdout
    assert "# conf: %s\n" % conf in p.stdout
    for line in ("mode = pending", "idle_ms = 250", "linger_ms = 100", "ports = 80,443"):
        assert line + "\n" in p.stdout


def test_check_fails_on_any_bad_setting(build, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("mode = always\nidle_ms = soon\n")
    p = run([cmd(build), "--check", "--conf", str(conf)])
    assert p.returncode == 1
    assert "%s:2: idle_ms: 'soon' is not a number of ms (0..3600000), using 5000" % conf \
        in p.stderr
    p = run([cmd(build), "--check"], {"SAFECLOSE_IDLE": "5"})
    assert p.returncode == 1
    assert "(the closest is SAFECLOSE_IDLE_MS)" in p.stderr
    p = run([cmd(build), "--check", "--conf", str(tmp_path / "missing.conf")])
    assert p.returncode == 1 and "cannot read it (ENOENT)" in p.stderr


def test_a_bad_file_line_is_reported_once_and_the_program_runs(build, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("idle_ms = soon\n")
    p = run([cmd(build), "--conf", str(conf), "--", "echo", "ran"])
    assert (p.returncode, p.stdout) == (0, "ran\n")
    assert p.stderr.count("is not a number") == 1


def test_usage_errors(build):
    p = run([cmd(build), "--mode", "sometimes", "--", "true"])
    assert p.returncode == 2
    assert p.stderr == "safeclose: --mode 'sometimes' is not one of off|pending|always|observe\n"
    assert run([cmd(build)]).returncode == 2
    assert run([cmd(build), "--bogus", "true"]).returncode == 2
    p = run([cmd(build), "--", "/nonexistent/program"])
    assert p.returncode == 127 and "/nonexistent/program" in p.stderr


def test_no_library_no_run(build, tmp_path):
    lonely = tmp_path / "safeclose"
    shutil.copy(cmd(build), lonely)
    p = run([str(lonely), "--", "echo", "ran"])
    assert (p.returncode, p.stdout) == (127, "")
    assert "libsafeclose.so not found" in p.stderr
