"""make install / make uninstall, the man pages and the systemd drop-in.
A separate build directory is installed (so the tree the other tests use
keeps its paths): into a DESTDIR staging tree, and into a PREFIX from which
the command then runs a server that the shim fixes."""

import os
import re
import shutil
import subprocess

import pytest

from harness.checks import assert_clean, assert_failure_without_shim
from test_pipeline import ERROR_SIZES, pipeline_spec
from test_shim_basics import run

INSTALLED = ["lib/safeclose/libsafeclose.so", "bin/safeclose",
             "share/man/man1/safeclose.1", "share/man/man7/libsafeclose.7",
             "share/doc/libsafeclose/examples/safeclose.conf",
             "share/doc/libsafeclose/examples/systemd-dropin.conf"]


def make(build, builddir, *args):
    p = subprocess.run(["make", "-C", build.repo, "-j2", "BUILD=%s" % builddir] + list(args),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


@pytest.fixture(scope="module")
def installs(build, tmp_path_factory):
    """One build directory, installed into a DESTDIR and into a PREFIX."""
    top = tmp_path_factory.mktemp("install")
    builddir = top / "build"
    dest = top / "dest"
    make(build, builddir, "install", "PREFIX=/usr/local", "DESTDIR=%s" % dest)
    staged = files_under(dest)
    prefix = top / "prefix"
    make(build, builddir, "install", "PREFIX=%s" % prefix)
    return {"top": top, "builddir": builddir, "dest": dest, "staged": staged, "prefix": prefix}


def test_install_into_a_destdir_and_uninstall(build, installs):
    dest = installs["dest"]
    assert installs["staged"] == sorted("usr/local/" + f for f in INSTALLED)
    mode = os.stat(dest / "usr/local/bin/safeclose").st_mode & 0o777
    assert mode == 0o755
    dropin = (dest / "usr/local/share/doc/libsafeclose/examples/systemd-dropin.conf").read_text()
    assert "Environment=LD_PRELOAD=/usr/local/lib/safeclose/libsafeclose.so\n" in dropin
    make(build, installs["builddir"], "uninstall", "PREFIX=/usr/local", "DESTDIR=%s" % dest)
    assert files_under(dest) == []


def test_run_from_a_prefix_install(build, installs):
    prefix = installs["prefix"]
    command = str(prefix / "bin/safeclose")
    library = str(prefix / "lib/safeclose/libsafeclose.so")
    p = run([command, "--check"])
    assert (p.returncode, p.stderr) == (0, "")
    assert "# library: %s\n" % library in p.stdout
    # Copied elsewhere, it still finds the library at the path it was built for.
    elsewhere = installs["top"] / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    shutil.copy(command, elsewhere / "safeclose")
    p = run([str(elsewhere / "safeclose"), "--", "sh", "-c", 'echo "$LD_PRELOAD"'])
    assert (p.returncode, p.stdout) == (0, library + "\n")


def test_the_installed_command_fixes_a_server(build, installs, netns_run):
    spec = pipeline_spec(build, ERROR_SIZES["unread-input"])
    without = netns_run(spec)
    assert_failure_without_shim(without, "line")
    spec["server"]["argv"] = [str(installs["prefix"] / "bin/safeclose"), "--"] + \
        spec["server"]["argv"]
    assert_clean(netns_run(spec), "line")


def lint(page):
    p = subprocess.run(["mandoc", "-Tlint", str(page)], capture_output=True, text=True)
    # The two pages refer to each other: found once both are installed.
    return [line for line in (p.stdout + p.stderr).splitlines()
            if "outdated mandoc.db" not in line
            and not re.search(r"STYLE: referenced manual not found: Xr "
                              r"(safeclose 1|libsafeclose 7)", line)]


@pytest.mark.parametrize("page", ["share/man/man1/safeclose.1", "share/man/man7/libsafeclose.7"])
@pytest.mark.needs("mandoc")
def test_the_man_pages_are_lint_clean(installs, page):
    assert lint(installs["prefix"] / page) == []


def test_the_library_page_lists_every_setting(build, installs):
    page = (installs["prefix"] / "share/man/man7/libsafeclose.7").read_text()
    table = run([os.path.join(build.repo, "build", "safeclose-settings")]).stdout
    names = re.findall(r"^\| `(SAFECLOSE_\w+)`", table, re.M)
    assert len(names) >= 11
    for name in names:
        assert ".It Ev %s Pq Cm %s\n" % (name, name[10:].lower()) in page
    assert str(installs["prefix"] / "lib/safeclose/libsafeclose.so") in page


@pytest.mark.needs("systemd")
def test_the_systemd_drop_in_is_valid_and_preloads_the_library(installs, tmp_path):
    dropin = installs["prefix"] / "share/doc/libsafeclose/examples/systemd-dropin.conf"
    units = tmp_path / "units"
    (units / "demo.service.d").mkdir(parents=True)
    (units / "demo.service").write_text("[Unit]\nDescription=demo\n"
                                        "[Service]\nExecStart=/bin/true\n")
    shutil.copy(dropin, units / "demo.service.d/safeclose.conf")
    p = run(["systemd-analyze", "verify", str(units / "demo.service")])
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    # The check reads the drop-in: a wrong key in it is reported.
    (units / "demo.service.d/safeclose.conf").write_text(dropin.read_text() + "Enviroment=X=1\n")
    p = run(["systemd-analyze", "verify", str(units / "demo.service")])
    assert "Unknown key 'Enviroment'" in p.stderr
    # What it sets loads the library.
    env = dict(re.findall(r"^Environment=(\w+)=(.*)$", dropin.read_text(), re.M))
    assert set(env) == {"LD_PRELOAD"}
    p = run(["/bin/true"], dict(env, SAFECLOSE_LOG="info"))
    assert "loaded: mode pending" in p.stderr


# conf/Containerfile, the container example. No container engine runs here
# (no daemon, no registry), so what it relies on is checked piece by piece:
# the paths it names are where `make install` puts the files, its packages
# cover what they need, and its settings are valid.
CONTAINERFILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "conf", "Containerfile")


def container_stages():
    """[[(INSTRUCTION, arguments)]], one list per stage. A commented-out
    instruction (`#ENTRYPOINT [...]`, an alternative offered) counts too."""
    with open(CONTAINERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        m = re.match(r"#?([A-Z]+)\s+(.*)", line.strip())
        if not m or m.group(1) not in ("FROM", "RUN", "COPY", "ENV", "ENTRYPOINT", "CMD"):
            continue
        if m.group(1) == "FROM":
            stages.append([])
        stages[-1].append((m.group(1), m.group(2)))
    return stages


def apt_packages(stage):
    return {pkg for op, args in stage if op == "RUN"
            for part in re.findall(r"apt-get install ([^&]*)", args)
            for pkg in part.split() if not pkg.startswith("-")}


def stage_env(stage):
    return dict(pair.split("=", 1) for op, args in stage if op == "ENV" for pair in args.split())


def test_the_container_example_installs_where_make_install_does(build, installs):
    build_stage, server = container_stages()
    # The build stage has what the build needs and runs make install.
    with open(os.path.join(build.repo, "tests", "install-deps.sh")) as f:
        needed = re.search(r'^build="(.*)"', f.read(), re.M).group(1).split()
    assert set(needed) <= apt_packages(build_stage)
    make_install = [args for op, args in build_stage if op == "RUN" and " install " in args
                    and args.startswith("make ")]
    assert len(make_install) == 1
    prefix = re.search(r"\bPREFIX=(\S+)", make_install[0]).group(1)
    destdir = re.search(r"\bDESTDIR=(\S+)", make_install[0]).group(1)
    assert prefix == "/usr/local"       # what installs["staged"] was installed for
    name = re.search(r"\bAS (\w+)", build_stage[0][1]).group(1)
    assert ("COPY", "--from=%s %s%s/ %s/" % (name, destdir, prefix, prefix)) in server
    # Every file of the prefix the server's stage names is one make install put there.
    named = set(re.findall(r"(%s/[\w./-]+)" % re.escape(prefix),
                           " ".join(args for op, args in server if op != "COPY")))
    assert {prefix + "/lib/safeclose/libsafeclose.so", prefix + "/bin/safeclose"} <= named
    assert sorted(p for p in named if p.lstrip("/") not in installs["staged"]) == []


def in_every_debian_image():
    """The essential packages and what they depend on (libc6): a Debian
    image, however slim, has them."""
    rows = run(["dpkg-query", "-W", "-f=${Essential}|${Package}|${Pre-Depends}, ${Depends}\n"]).stdout
    have = set()
    for row in rows.splitlines():
        essential, package, depends = row.split("|", 2)
        if essential == "yes":
            have.add(package)
            have.update(re.findall(r"(?:^|[,|]\s*)([a-z0-9][a-z0-9.+-]+)", depends))
    return have


def test_the_container_example_installs_what_the_files_link(installs):
    server = container_stages()[1]
    packages = set()
    for f in ("bin/safeclose", "lib/safeclose/libsafeclose.so"):
        ldd = run(["ldd", str(installs["prefix"] / f)])
        assert ldd.returncode == 0, ldd.stderr
        for lib in re.findall(r"=> (/\S+)", ldd.stdout):
            # dpkg knows a file by the path its package ships (/lib or /usr/lib)
            owner = (run(["dpkg-query", "-S", lib]).stdout
                     or run(["dpkg-query", "-S", os.path.realpath(lib)]).stdout)
            assert owner, lib
            packages.add(owner.split(":")[0])
    extra = packages - in_every_debian_image()
    assert "libjansson4" in extra and "libc6" not in extra, packages
    assert extra <= apt_packages(server)


def test_the_container_example_settings_are_valid(installs):
    env = stage_env(container_stages()[1])
    assert env["LD_PRELOAD"] == "/usr/local/lib/safeclose/libsafeclose.so"
    settings = {k: v for k, v in env.items() if k.startswith("SAFECLOSE_")}
    assert settings
    command = str(installs["prefix"] / "bin/safeclose")
    p = run([command, "--check"], settings)
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    for key, value in settings.items():
        assert "\n%s = %s\n" % (key[10:].lower(), value) in p.stdout
    # The image makes the directory the stats files go to.
    stats_dir = os.path.dirname(settings["SAFECLOSE_STATS"])
    assert ("RUN", "mkdir -p %s" % stats_dir) in container_stages()[1]
    # The image's build runs the same check, which fails on a misspelt setting.
    assert ("RUN", '["%s", "--check"]' % env["LD_PRELOAD"].replace(
        "lib/safeclose/libsafeclose.so", "bin/safeclose")) in container_stages()[1]
    p = run([command, "--check"], dict(settings, SAFECLOSE_PORT="80"))
    assert p.returncode == 1 and "the closest is SAFECLOSE_PORTS" in p.stderr
