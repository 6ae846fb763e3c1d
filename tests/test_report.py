"""`safeclose report` sums stats files (a table, the files' own JSON schema,
Prometheus text checked by promtool); `safeclose --stats DIR -- PROGRAM`
prints the family's summary when the program ends, and ends as it did."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from test_abtest import COUNTERS, nginx_spec, http_client, read_stats, summed
from test_command import cmd
from test_shim_basics import run


def arm(closes=0, abortive=0, at_risk=0, hist=(), **more):
    c = dict.fromkeys(COUNTERS, 0)
    c.update(closes=closes, abortive=abortive, at_risk=at_risk,
             clean=closes - abortive - at_risk, **more)
    c["linger_ms"] = {"p50": 0, "p99": 0, "max": max([u for u, _ in hist], default=0)}
    c["linger_hist"] = [list(p) for p in hist]
    return c


def stats_file(path, pid, linger, control, program="srv", mode="pending", ab=50):
    path.write_text(json.dumps({
        "version": 1, "pid": pid, "ppid": 1, "proc_start": 100 + pid, "program": program,
        "mode": mode, "ab": ab, "started": 1.0, "written": 2.0,
        "arms": {"linger": linger, "control": control}}))


def family(tmp_path):
    """Three processes' files, a writer's temporary file and a stray one."""
    d = tmp_path / "stats"
    d.mkdir()
    stats_file(d / "stats.1.json", 1, arm(10, 2, 1, lingered=3, peer_finished=3,
                                          bytes_discarded=500, hist=[(3, 2), (39, 1)]),
               arm(10, 4, 0))
    stats_file(d / "stats.2.json", 2, arm(30, 3, 0, lingered=3, peer_finished=2,
                                          idle_timeout=1, hist=[(3, 1), (5119, 2)]),
               arm(30, 9, 3))
    stats_file(d / "stats.3.json", 3, arm(), arm(), program="helper")
    (d / "stats.4.json.tmp.77").write_text("{half a fi")
    (d / "notes.txt").write_text("not stats")
    return d


def report(build, *args):
    return run([cmd(build), "report", *map(str, args)])


def test_sums_every_file_of_a_directory(build, tmp_path):
    d = family(tmp_path)
    p = report(build, "--json", d)
    assert (p.returncode, p.stderr) == (0, "")
    t = json.loads(p.stdout)
    assert t["version"] == 1 and t["files"] == 3
    assert sorted(x["pid"] for x in t["processes"]) == [1, 2, 3]
    linger, control = t["arms"]["linger"], t["arms"]["control"]
    assert (linger["closes"], linger["abortive"], linger["at_risk"]) == (40, 5, 1)
    assert (control["closes"], control["abortive"], control["at_risk"]) == (40, 13, 3)
    assert (linger["lingered"], linger["peer_finished"], linger["idle_timeout"]) == (6, 5, 1)
    assert linger["bytes_discarded"] == 500
    # Merged histogram: 3 of 6 lingers at <= 3 ms, the rest at 39 and 5119 ms.
    assert linger["linger_hist"] == [[3, 3], [39, 1], [5119, 2]]
    assert linger["linger_ms"] == {"p50": 3, "p99": 5119, "max": 5119}
    # Files and directories mix; the same file twice counts twice.
    p = report(build, "--json", d, d / "stats.1.json")
    assert json.loads(p.stdout)["arms"]["control"]["closes"] == 50


def test_the_table_puts_the_arms_side_by_side(build, tmp_path):
    p = report(build, family(tmp_path))
    assert (p.returncode, p.stderr) == (0, "")
    lines = p.stdout.splitlines()
    assert lines[0] == "3 files, 3 processes; mode, ab: pending 50%"
    rows = {line[:22].strip(): line[22:].split() for line in lines[2:-1]}
    assert lines[1].split() == ["linger", "control"]
    assert rows["closes"] == ["40", "40"]
    assert rows["abortive"] == ["5", "13"]
    assert rows["abortive per 100"] == ["12.5", "32.5"]
    assert rows["at_risk per 100"] == ["2.5", "7.5"]
    assert rows["linger_ms p50"] == ["3", "0"]
    assert rows["linger_ms p99"] == ["5119", "0"]
    assert rows["linger_ms max"] == ["5119", "0"]
    assert set(COUNTERS) <= set(rows)
    assert lines[-1] == "abortive per 100 closes, linger - control: -20.0"


def test_json_is_the_files_schema_and_reads_back(build, tmp_path):
    d = family(tmp_path)
    first = report(build, "--json", d).stdout
    summary = tmp_path / "summary.json"
    summary.write_text(first)
    # A summary sums like the files it came from (and is read the same way).
    again = report(build, "--json", summary)
    assert (again.returncode, again.stdout) == (0, first)
    one = json.loads((d / "stats.1.json").read_text())["arms"]["linger"]
    assert set(json.loads(first)["arms"]["linger"]) == set(one)
    both = json.loads(report(build, "--json", summary, d).stdout)
    assert both["files"] == 6 and both["arms"]["linger"]["closes"] == 80


def test_bad_input_is_named_and_fails(build, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 2, "arms": {}}')
    p = report(build, bad)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == "safeclose report: %s: not a version 1 stats file\n" % bad
    bad.write_text('{"version": 1, "arms": {"linger": {"closes": 1}}}')
    p = report(build, bad)
    assert p.returncode == 1 and "arms.linger.abortive: missing" in p.stderr
    bad.write_text("{not json")
    assert report(build, bad).returncode == 1
    assert report(build, tmp_path / "missing.json").returncode == 1
    assert report(build).returncode == 2


@pytest.mark.needs("prometheus")
def test_prometheus_passes_promtool(build, tmp_path):
    p = report(build, "--prometheus", family(tmp_path))
    assert (p.returncode, p.stderr) == (0, "")
    check = subprocess.run(["promtool", "check", "metrics"], input=p.stdout,
                           capture_output=True, text=True, timeout=60)
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
    lines = p.stdout.splitlines()
    assert 'safeclose_abortive_total{arm="control"} 13' in lines
    assert 'safeclose_closes_total{arm="linger"} 40' in lines
    for name in COUNTERS:
        assert "# TYPE safeclose_%s_total counter" % name in lines
    assert "# TYPE safeclose_linger_seconds histogram" in lines
    # Cumulative, in seconds, at the shim's power-of-two bucket edges.
    assert 'safeclose_linger_seconds_bucket{arm="linger",le="0.003"} 3' in lines
    assert 'safeclose_linger_seconds_bucket{arm="linger",le="0.031"} 3' in lines
    assert 'safeclose_linger_seconds_bucket{arm="linger",le="0.063"} 4' in lines
    assert 'safeclose_linger_seconds_bucket{arm="linger",le="8.191"} 6' in lines
    assert 'safeclose_linger_seconds_bucket{arm="linger",le="+Inf"} 6' in lines
    assert 'safeclose_linger_seconds_count{arm="linger"} 6' in lines
    assert 'safeclose_linger_max_seconds{arm="linger"} 5.119' in lines


def table_rows(text):
    """The summary table's rows from the command's stderr: {name: [linger, control]}."""
    start = text.index("safeclose: stats of the family in ")
    rows = {}
    for line in text[start:].splitlines()[3:]:
        if line.startswith("abortive per 100 closes"):
            break
        rows[line[:22].strip()] = line[22:].split()
    return rows


@pytest.mark.needs("nginx-light")
def test_stats_on_nginx_agrees_with_nstat(netns_run, build, tmp_path, http_docroot):
    """observe under the command: its summary's abortive closes are the
    kernel's TcpExtTCPAbortOnClose, and equal the files' own sum."""
    stats = tmp_path / "family"
    spec = nginx_spec(build, tmp_path, http_docroot, 2, {})
    spec["server"]["argv"] = [cmd(build), "--mode", "observe", "--stats", str(stats),
                              "--"] + spec["server"]["argv"]
    spec["clients"] = [http_client(build, 8080, delay_ms=50 * (i % 3)) for i in range(6)]
    result = netns_run(spec)
    kernel = result["counters"]["TCPAbortOnClose"]
    assert kernel > 0, "no abortive close drawn: the test proves nothing: %s" % result
    rows = table_rows(result["server"]["stderr"])
    assert rows["abortive"] == ["0", str(kernel)], result["server"]["stderr"]
    assert rows["closes"] == ["0", str(len(spec["clients"]))]
    files = read_stats(stats)
    assert len(files) == 3  # the master and two workers
    assert int(rows["abortive"][1]) == summed(files, "control")["abortive"]
    assert result["server"]["rc"] == 0


def test_stats_keeps_the_programs_exit_status_and_signal(build, tmp_path):
    d = tmp_path / "s"
    p = run([cmd(build), "--stats", d, "--", "sh", "-c", "exit 7"])
    assert p.returncode == 7
    assert p.stdout == "" and p.stderr.startswith("safeclose: stats of the family in %s:" % d)
    p = run([cmd(build), "--stats", d, "--", "sh", "-c", "kill -TERM $$"])
    assert p.returncode == -signal.SIGTERM
    p = run([cmd(build), "--stats", tmp_path / "s2", "--", "/nonexistent/program"])
    assert p.returncode == 127


def test_stats_passes_signals_on(build, tmp_path):
    # The program reports the signal it got and exits 3: sent to the command,
    # it reaches the program once.
    prog = 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.05; done'
    p = subprocess.Popen([cmd(build), "--stats", str(tmp_path / "s"), "--", "sh", "-c", prog],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert (p.returncode, out) == (3, "got TERM\n")
    assert "safeclose: stats of the family in" in err


def test_ab_option_is_the_setting(build):
    p = run([cmd(build), "--ab", "25", "--", "sh", "-c", 'echo "$SAFECLOSE_AB"'])
    assert (p.returncode, p.stdout, p.stderr) == (0, "25\n", "")
    p = run([cmd(build), "--ab", "150", "--", "true"])
    assert p.returncode == 2 and p.stderr.startswith("safeclose: --ab '150' is not ")
