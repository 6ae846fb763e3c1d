"""What the shim must be without any network: a library that exports only
its wrappers, reports bad settings in one line and runs on, and leaves every
result and errno of the descriptor calls exactly as they were."""

import os
import re
import subprocess

import pytest

EXPECTED_EXPORTS = {
    # descriptors created, copied, passed
    "socket", "accept", "accept4", "dup", "dup2", "dup3", "fcntl", "fcntl64",
    "recvmsg", "sendmsg", "epoll_ctl", "setsockopt",
    # the read side a program shut, kept open underneath
    "shutdown", "read", "readv", "recv", "recvfrom", "recvmmsg",
    "__read_chk", "__recv_chk", "__recvfrom_chk",
    # descriptors let go of
    "close", "close_range", "closefrom", "fclose", "syscall",
    "_exit", "_Exit", "execve", "execv", "execvp", "execvpe", "execl", "execlp",
    "execle", "fexecve",
    # processes
    "fork", "vfork", "clone", "posix_spawn", "posix_spawnp", "popen", "system", "wordexp",
    # calls that want the caller alone in its process
    "unshare", "setns",
    # credentials: a process whose ids change leaves the family's books
    "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups",
    # descriptors created: retried when the shim made room (room.h)
    "open", "open64", "__open_2", "__open64_2", "openat", "openat64", "__openat_2",
    "__openat64_2", "creat", "creat64", "fopen", "fopen64", "tmpfile", "tmpfile64",
    "opendir", "socketpair", "pipe", "pipe2", "epoll_create", "epoll_create1",
    "inotify_init", "inotify_init1", "eventfd", "timerfd_create", "signalfd",
    "memfd_create",
}


def run(argv, env=None, timeout=60):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def test_exports_only_the_interposed_functions(build):
    out = run(["nm", "-D", "--defined-only", build.shim_lib]).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert exported == EXPECTED_EXPORTS


@pytest.mark.parametrize("env,line", [
    ({"SAFECLOSE_MODE": "sometimes"},
     "SAFECLOSE_MODE: 'sometimes' is not one of off|pending|always|observe, using pending"),
    ({"SAFECLOSE_LINGER_MS": "30s"},
     "SAFECLOSE_LINGER_MS: '30s' is not a number of ms (0..3600000), using 30000"),
    ({"SAFECLOSE_IDLE_MS": "-1"},
     "SAFECLOSE_IDLE_MS: '-1' is not a number of ms (0..3600000), using 5000"),
    ({"SAFECLOSE_LOG": "verbose"},
     "SAFECLOSE_LOG: 'verbose' is not one of error|info|debug, using error"),
])
def test_bad_setting_is_one_line_and_the_program_runs_on(build, env, line):
    env = dict(env, LD_PRELOAD=build.shim)
    p = run(["/bin/echo", "still here"], env)
    assert p.returncode == 0
    assert p.stdout == "still here\n"
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert re.fullmatch(r"safeclose\[\d+\] error config: " + re.escape(line), lines[0])


def test_silent_by_default(build):
    p = run(["/bin/echo", "x"], {"LD_PRELOAD": build.shim})
    assert (p.returncode, p.stdout, p.stderr) == (0, "x\n", "")


@pytest.mark.parametrize("mode,where", [("pending", "async"), ("always", "async"),
                                        ("pending", "sync"), ("off", "async")])
def test_descriptor_calls_return_what_they_would_without_the_shim(build, mode, where):
    fdops = os.path.join(build.repo, "build", "fdops")
    # The linger of fdops' last connected socket is bounded small: its
    # client only closes after it, so it ends on the idle bound.
    plain = run([fdops])
    shimmed = run([fdops], {"LD_PRELOAD": build.shim, "SAFECLOSE_MODE": mode,
                            "SAFECLOSE_LINGER": where, "SAFECLOSE_IDLE_MS": "200"})
    assert plain.returncode == shimmed.returncode == 0
    assert shimmed.stderr == ""
    assert shimmed.stdout == plain.stdout
    assert "close() from a signal handler" in plain.stdout


def test_readme_settings_table_is_the_parser_table(build):
    table = run([os.path.join(build.repo, "build", "safeclose-settings")]).stdout
    with open(os.path.join(build.repo, "README.md")) as f:
        readme = f.read()
    assert table.strip() in readme
