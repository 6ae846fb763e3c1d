"""A/B scenarios with unmodified third-party servers from Debian packages.

The HTTP client pipelines two GETs for a 2 MB file, the second 50 ms after
the first, over a 20 mbit/s loopback. The server answers the first and closes
with the second unread (HTTP/1.0 in http.server; keepalive_requests 1 in
nginx). Node.js runs the line protocol of test_pipeline.py, and an upload
endpoint of its own http module that refuses a large body with 413.
"""

import os

import pytest

from harness.checks import (assert_clean_with_shim, assert_each_run_fails_without_shim,
                            assert_failure_without_shim)

NGINX = "/usr/sbin/nginx"


def http_client(build, port, gap_ms=50, *more):
    return {"argv": [build.pipeclient, "--connect", "127.0.0.1:%d" % port,
                     "--proto", "http", "--path", "/big.bin",
                     "--requests", "2", "--gap-ms", str(gap_ms)] + list(more)}


def nginx_spec(build, tmp_path, docroot, lingering_close):
    temp = {name: tmp_path / name for name in
            ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "daemon off; master_process on; worker_processes 1; user root;\n"
        "error_log stderr; pid %s;\n"
        "events {}\n"
        "http {\n"
        "  access_log off;\n"
        "%s"
        "  server { listen 127.0.0.1:8080; root %s;\n"
        "           lingering_close %s; keepalive_requests 1; }\n"
        "}\n" % (tmp_path / "nginx.pid",
                 "".join("  %s_temp_path %s;\n" % item for item in temp.items()),
                 docroot, lingering_close))
    return {
        "server": {
            # -e stderr: no attempt at /var/log/nginx before the config is read
            "argv": [NGINX, "-e", "stderr", "-c", str(conf), "-p", str(tmp_path)],
            "ready": {"listen": 8080},
            "exits": False,     # stopped (SIGTERM) once the connection is over
        },
        "clients": [http_client(build, 8080)],
    }


def size(docroot):
    return (docroot / "big.bin").stat().st_size


def test_python_http_server(ab, build, http_docroot):
    spec = {
        "server": {
            "argv": ["/usr/bin/python3", "-m", "http.server", "8000",
                     "--bind", "127.0.0.1", "--directory", str(http_docroot)],
            "ready": {"listen": 8000},
            "exits": False,
        },
        "clients": [http_client(build, 8000)],
    }
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "http")
    assert_clean_with_shim(with_, "http", expect_length=size(http_docroot))


@pytest.mark.needs("nginx-light")
def test_nginx_lingering_close_off(ab, build, tmp_path, http_docroot):
    without, with_ = ab(nginx_spec(build, tmp_path, http_docroot, "off"))
    assert_failure_without_shim(without, "http")
    assert_clean_with_shim(with_, "http", expect_length=size(http_docroot))


@pytest.mark.needs("nginx-light")
def test_nginx_own_lingering_close_no_harm(netns_run, build, tmp_path, http_docroot):
    # Not A/B: nginx lingers by itself here, so the run without the shim is
    # clean too and the without-shim failure assertion does not apply. This only
    # shows that the shim does no harm to a server that already lingers.
    spec = nginx_spec(build, tmp_path, http_docroot, "on")
    spec["server"]["preload"] = build.shim
    assert_clean_with_shim(netns_run(spec), "http", expect_length=size(http_docroot))


@pytest.mark.needs("gunicorn")
def test_gunicorn_prefork_workers(ab, build):
    # gunicorn (Debian's gunicorn package): a Python arbiter that forks its
    # workers before any connection; a sync worker accepts, answers one
    # request and closes, the pipelined second one unread. The books are
    # made in each worker at its first connection.
    spec = {
        "server": {
            "argv": ["/usr/bin/gunicorn", "--workers", "2", "--bind", "127.0.0.1:8000",
                     "--chdir", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "servers"),
                     "wsgi_big:app"],
            "ready": {"listen": 8000},
            "exits": False,
        },
        # The second request 250 ms on, and nothing read before 500 ms: a
        # worker slow to its first read (a loaded machine) would otherwise
        # read both requests at once, and none would be left unread; the
        # reply waits unsent meanwhile, which the reset then discards.
        "clients": [http_client(build, 8000, 250, "--read-after-ms", "500")],
    }
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "http")
    assert_clean_with_shim(with_, "http", expect_length=2_000_000)


NODE = "/usr/bin/node"
NODE_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers", "pipeline.js")


@pytest.mark.parametrize("error_size", [500_000, 2_000_000], ids=["late-data", "unread-input"])
@pytest.mark.needs("nodejs")
def test_nodejs_destroy_after_error_reply(ab, build, error_size):
    # Node.js from Debian's nodejs package running a plain net server
    # (tests/servers/pipeline.js): it destroys the socket once its error
    # reply is written, and libuv closes with syscall(SYS_close), never
    # through close().
    spec = {
        "server": {"argv": [NODE, NODE_SERVER, "7000", str(error_size), "1"],
                   "ready": "line", "exits": True},
        "clients": [{"argv": [build.pipeclient, "--connect", "127.0.0.1:7000"]}],
    }
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")


NODE_UPLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers", "upload413.js")
UPLOAD_LIMIT = 1_000_000
UPLOAD_SIZE = 2_000_000
UPLOAD_ERROR_SIZE = 100_000
RUNS = 30


def node_pipeline_runs(build):
    return {
        "server": {"argv": [NODE, NODE_SERVER, "7000", "500000", str(RUNS)],
                   "ready": "line", "exits": True},
        "clients": [{"argv": [build.pipeclient, "--connect", "127.0.0.1:7000"]}] * RUNS,
    }


def node_upload_runs(build, mode):
    return {
        "server": {"argv": [NODE, NODE_UPLOAD, "7000", str(UPLOAD_LIMIT),
                            str(UPLOAD_ERROR_SIZE), str(RUNS), mode],
                   "ready": "line", "exits": True},
        "clients": [{"argv": [build.pipeclient, "--connect", "127.0.0.1:7000",
                              "--proto", "http", "--path", "/upload", "--requests", "1",
                              "--post-bytes", str(UPLOAD_SIZE)]}] * RUNS,
    }


@pytest.mark.parametrize("scenario", ["pipelined-error", "upload-413-end", "upload-413-destroy"])
@pytest.mark.needs("nodejs")
def test_nodejs_many_runs(ab, build, scenario):
    # RUNS connections one after the other against one Node.js server in one
    # namespace, each with its own counters: zero aborts in every run with the
    # shim, a reset in every run without it. The last connection is still
    # lingering when the server exits, so the exit path is in every run too.
    #  pipelined-error: pipeline.js (above), its 500 kB error reply cut by the
    #    reset of the requests that follow it.
    #  upload-413-*: upload413.js, Node's http module answering 413 to a
    #    2 MB POST from its headers, never reading the body, then ending
    #    (Connection: close) or destroying the socket while the client sends.
    if scenario == "pipelined-error":
        spec, kind, status = node_pipeline_runs(build), "line", None
    else:
        spec, kind, status = node_upload_runs(build, scenario.rsplit("-", 1)[1]), "http", 413
    spec["sequential"] = True
    checks = {} if status is None else {"expect_status": status}
    without, with_ = ab(spec)
    assert_each_run_fails_without_shim(without, kind, **checks)
    length = None if status is None else UPLOAD_ERROR_SIZE
    assert_clean_with_shim(with_, kind, expect_length=length, **checks)
    assert with_["server"]["stdout"].strip().endswith('{"conns":%d}' % RUNS), with_["server"]
