# libsafeclose: `make` builds the shim, the safeclose command, the man pages
# and the test apps under build/; `make install PREFIX=/usr/local DESTDIR=`
# and `make uninstall` put them in place; `make deb` builds and checks the
# Debian packages;
# `make check` installs what the tests need (as root, from Debian packages;
# an ordinary user is told what is missing, and what needs it is skipped),
# then runs the static analysis (`make lint`), the unit tests, a short fuzz
# run of the settings parsers (`make fuzz-short`; `make fuzz` is the long
# one), the A/B integration tests (as root, a part of them again as an
# ordinary user: check-user) and CPython's own
# regression tests without and with the shim, the unit tests and the A/B
# tests again against the ASan+UBSan library, and the unit tests and the
# threaded tests against the TSan one; `make valgrind` runs valgrind's
# memcheck on the test apps under the shim; `make demo` shows
# the lost reply without the shim and the full reply with it.

ifeq ($(origin CC),default)
CC      := gcc
endif
PYTHON  ?= /usr/bin/python3
CFLAGS  ?= -O2 -g

# SAN=asan|ubsan|tsan builds a sanitizer variant of the library, the tools
# and the unit tests into build-$(SAN)/ (the test apps stay the plain ones of
# build/: they are the hosts, not what is tested). `make asan` and friends
# are the short forms. asan is ASan and UBSan together (what `make check`
# runs); UBSan stops at the first finding instead of printing and going on.
SAN     ?=
SAN_asan  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_ubsan := -fsanitize=undefined -fno-sanitize-recover=all
SAN_tsan  := -fsanitize=thread
# SAN=shape: not a sanitizer, the same idea: a variant that shows the path a
# call takes through the shim's files (`make shape`, tests/shape/).
SAN_shape := -finstrument-functions
ifeq ($(SAN),)
BUILD   := build
else
ifeq ($(SAN_$(SAN)),)
$(error SAN=$(SAN): expected asan, ubsan, tsan or shape)
endif
BUILD   := build-$(SAN)
CFLAGS  += $(SAN_$(SAN))
endif
WARN    := -Wall -Wextra -Werror -Wshadow
STD     := -std=gnu11 -D_GNU_SOURCE
VERSION := 0.1

# Where `make install` puts things (the GNU names; DESTDIR for staging).
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
SYSCONFDIR ?= /etc
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/libsafeclose

SHIM_CFLAGS  := $(STD) $(WARN) -Wmissing-prototypes -fPIC -fvisibility=hidden $(CFLAGS)
SHIM_LDFLAGS := -shared -Wl,-z,relro,-z,now -Wl,-z,defs
SHIM_LIBS    := -ldl -pthread
APP_CFLAGS   := -std=gnu11 $(WARN) -pthread $(CFLAGS)

SHIM_SRCS := $(wildcard shim/*.c)
SHIM_OBJS := $(SHIM_SRCS:shim/%.c=$(BUILD)/shim/%.o)
# Everything but the entry points: what unit tests and tools link directly.
CORE_OBJS := $(filter-out $(BUILD)/shim/interpose.o $(BUILD)/shim/creators.o,$(SHIM_OBJS))

APPS      := $(patsubst test-apps/%.c,$(BUILD)/%,$(wildcard test-apps/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNITS     := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
TOOLS     := $(BUILD)/safeclose-settings $(BUILD)/safeclose
BENCHES   := $(patsubst bench/%.c,$(BUILD)/%,$(wildcard bench/*.c))

.DELETE_ON_ERROR:

.PHONY: FORCE all check check-user install uninstall man deb deps unit unit-run integration cpython demo bench bench-deps bench-profile clean sanitized-all stress shape \
	asan ubsan tsan tsan-stress lib lint fuzz fuzz-short fuzz-run fuzz-build sanitized-unit sanitized-integration tsan-check valgrind sanitized-cpython

MANPAGES := $(BUILD)/safeclose.1 $(BUILD)/libsafeclose.7
DROPIN   := $(BUILD)/systemd-dropin.conf

# The same shim with 2^12 ownership records instead of 2^18 (a build-time
# constant, not a setting), so that a test runs the books far past their
# size in a fraction of a second: tests/test_noharm_books.py.
SMALLBOOKS_OBJS := $(filter-out $(BUILD)/shim/ownership.o,$(SHIM_OBJS)) \
		   $(BUILD)/shim/ownership-smallbooks.o

all: $(BUILD)/libsafeclose.so $(BUILD)/libsafeclose-smallbooks.so $(APPS) $(TOOLS) $(BENCHES) \
	$(MANPAGES) $(DROPIN)

$(BUILD)/shim/%.o: shim/%.c $(wildcard shim/*.h) | $(BUILD)/shim
	$(CC) $(SHIM_CFLAGS) -c -o $@ $<

$(BUILD)/libsafeclose.so: $(SHIM_OBJS) $(if $(filter shape,$(SAN)),$(BUILD)/shape-trace.o)
	$(CC) $(SHIM_LDFLAGS) $(SAN_$(SAN)) -o $@ $^ $(SHIM_LIBS)

$(BUILD)/shape-trace.o: tests/shape/trace.c | $(BUILD)
	$(CC) $(STD) $(WARN) -Ishim -fPIC -fvisibility=hidden -O2 -g -c -o $@ $<

$(BUILD)/shim/ownership-smallbooks.o: shim/ownership.c $(wildcard shim/*.h) | $(BUILD)/shim
	$(CC) $(SHIM_CFLAGS) -DOWN_RECORDS_LOG2=12 -c -o $@ $<

$(BUILD)/libsafeclose-smallbooks.so: $(SMALLBOOKS_OBJS)
	$(CC) $(SHIM_LDFLAGS) $(SAN_$(SAN)) -o $@ $^ $(SHIM_LIBS)

$(BUILD)/%: test-apps/%.c $(wildcard test-apps/*.h) | $(BUILD)
	$(CC) $(APP_CFLAGS) -o $@ $<

$(BUILD)/%: bench/%.c | $(BUILD)
	$(CC) $(APP_CFLAGS) -o $@ $<

$(BUILD)/safeclose-settings: tools/settings_doc.c $(CORE_OBJS) | $(BUILD)
	$(CC) $(STD) $(WARN) $(CFLAGS) -o $@ $^ $(SHIM_LIBS)

# The command finds the library at the installed path it was built for:
# paths.h changes (and the command is rebuilt) only when LIBDIR does.
$(BUILD)/paths.h: FORCE | $(BUILD)
	@printf '#define SC_LIBDIR "%s"\n#define SC_VERSION "%s"\n' '$(LIBDIR)' '$(VERSION)' > $@.new
	@cmp -s $@.new $@ && rm $@.new || mv $@.new $@

# Only the command reads JSON (safeclose report): only it links jansson.
$(BUILD)/safeclose: $(wildcard cmd/*.c) $(BUILD)/paths.h $(CORE_OBJS) $(wildcard shim/*.h cmd/*.h) | $(BUILD)
	$(CC) $(STD) $(WARN) $(CFLAGS) $(LDFLAGS) -Wl,-z,relro,-z,now -include $(BUILD)/paths.h \
		-o $@ $(wildcard cmd/*.c) $(CORE_OBJS) $(SHIM_LIBS) -ljansson

# The paths a page or example names are the installed ones; the settings
# list of libsafeclose(7) comes from the settings table.
SUBST := sed -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'

$(BUILD)/safeclose.1: man/safeclose.1 $(BUILD)/paths.h | $(BUILD)
	$(SUBST) $< > $@

$(BUILD)/libsafeclose.7: man/libsafeclose.7.in $(BUILD)/safeclose-settings $(BUILD)/paths.h
	$(BUILD)/safeclose-settings --man > $@.settings
	$(SUBST) -e '/^@SETTINGS@$$/{r $@.settings' -e 'd}' $< > $@
	rm -f $@.settings

$(DROPIN): conf/systemd-dropin.conf.in $(BUILD)/paths.h | $(BUILD)
	$(SUBST) $< > $@

man: $(MANPAGES)

# make install PREFIX=/usr/local DESTDIR=: the library in its own directory
# under LIBDIR (it is preloaded, never linked against), the command, the man
# pages, and the examples (the settings file with every default, the
# systemd drop-in) under DOCDIR.
INSTALLED := $(LIBDIR)/safeclose/libsafeclose.so $(BINDIR)/safeclose \
	$(MANDIR)/man1/safeclose.1 $(MANDIR)/man7/libsafeclose.7 \
	$(DOCDIR)/examples/safeclose.conf $(DOCDIR)/examples/systemd-dropin.conf

install: $(BUILD)/libsafeclose.so $(BUILD)/safeclose $(MANPAGES) $(DROPIN)
	install -d $(DESTDIR)$(LIBDIR)/safeclose $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(DOCDIR)/examples
	install -m 644 $(BUILD)/libsafeclose.so $(DESTDIR)$(LIBDIR)/safeclose/
	install -m 755 $(BUILD)/safeclose $(DESTDIR)$(BINDIR)/
	install -m 644 $(BUILD)/safeclose.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(BUILD)/libsafeclose.7 $(DESTDIR)$(MANDIR)/man7/
	install -m 644 conf/safeclose.conf $(DROPIN) $(DESTDIR)$(DOCDIR)/examples/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LIBDIR)/safeclose $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

$(BUILD)/unit/%: tests/unit/%.c $(CORE_OBJS) $(wildcard shim/*.h tests/unit/*.h) | $(BUILD)/unit
	$(CC) $(STD) $(WARN) $(CFLAGS) -Ishim -o $@ $< $(CORE_OBJS) -lcmocka $(SHIM_LIBS)

# The command's report summing, with calloc made to fail on demand.
$(BUILD)/unit/test_report: tests/unit/test_report.c cmd/report.c cmd/report.h $(CORE_OBJS) \
		$(wildcard shim/*.h) | $(BUILD)/unit
	$(CC) $(STD) $(WARN) $(CFLAGS) -Ishim -Wl,--wrap=calloc -o $@ $< cmd/report.c $(CORE_OBJS) \
		-lcmocka -ljansson $(SHIM_LIBS)

$(BUILD) $(BUILD)/shim $(BUILD)/unit:
	mkdir -p $@

deps:
	@sh tests/install-deps.sh

# An ordinary user cannot install packages: a command that needs a missing
# one says so and is skipped (as root it always runs, after make deps).
NEEDS := sh tests/install-deps.sh run

unit:
	@$(NEEDS) libcmocka-dev -- $(MAKE) --no-print-directory unit-run

# An ordinary user runs them in a user namespace of its own, where they have
# the capabilities root has: a test makes a pid namespace of its own. (It
# cannot make the user namespace itself: under TSan a forked child has a
# thread of TSan's, and unshare(CLONE_NEWUSER) wants a single thread.)
UNIT_NS := $(if $(filter 0,$(shell id -u)),,unshare --user --map-current-user --keep-caps)

unit-run: $(UNITS)
	@set -e; for t in $(UNITS); do echo "== $$t"; $(UNIT_NS) $$t; done

integration: all
	$(NEEDS) python3-pytest -- $(PYTHON) -m pytest -q tests

# make check-user (part of check, run as root): a representative part of the
# tests again as an ordinary user, CHECK_USER, in a copy of the tree it owns
# (tests/check-user.sh): A/B scenarios in its own namespaces, a real server
# (nginx) and the command on it, the counters against the stats, the settings
# file under a private /etc, an install into a DESTDIR and a PREFIX, the
# examples (~1 minute). The set-user-ID test is root's alone: it takes root
# to make a file set-user-ID to another user.
CHECK_USER ?= nobody
USER_TESTS ?= tests/test_nonroot.py tests/test_conf.py tests/test_install.py tests/test_noharm_threads.py \
	"tests/test_pipeline.py::test_plain_close[unread-input-fork]" \
	"tests/test_pipeline.py::test_plain_close[late-data-single]" \
	tests/test_real_servers.py::test_python_http_server \
	tests/test_real_servers.py::test_nginx_lingering_close_off \
	tests/test_command.py::test_the_wrapper_fixes_a_debian_server \
	tests/test_abtest.py::test_observe_python_http_server_matches_nstat \
	-k "not set_user_id"

check-user: all
	$(NEEDS) python3-pytest -- sh tests/check-user.sh $(CHECK_USER) $(USER_TESTS)

lib: $(BUILD)/libsafeclose.so $(TOOLS) $(UNITS)

asan ubsan tsan:
	$(MAKE) SAN=$@ lib

# The tests run against a sanitized library through TEST_PRELOAD (read by
# tests/conftest.py): the sanitizer's runtime first, as an LD_PRELOAD library
# needs, then the library. Leaks are the hosts' own (Python, the shells; the
# shim allocates nothing to leak). Every report also goes to a log under
# SAN_LOGS (tests/harness/scenario.py gives each namespace run a directory of
# its own there), so that a finding in a process whose stderr and exit status
# no test reads still fails the target.
ASAN_RT     := $(shell $(CC) -print-file-name=libasan.so)
TSAN_RT     := $(shell $(CC) -print-file-name=libtsan.so)
ASAN_LOGS   := $(CURDIR)/build-asan/logs
TSAN_LOGS   := $(CURDIR)/build-tsan/logs
VG_LOGS     := $(CURDIR)/build/valgrind
ASAN_ENV    = TEST_PRELOAD=$(ASAN_RT):$(CURDIR)/build-asan/libsafeclose.so SAN_LOGS=$(ASAN_LOGS) \
	ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:log_path=$(ASAN_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(ASAN_LOGS)/ubsan
# Thread leaks are the test programs' (they exit with threads running).
TSAN_ENV    = TEST_PRELOAD=$(TSAN_RT):$(CURDIR)/build-tsan/libsafeclose.so SAN_LOGS=$(TSAN_LOGS) \
	TSAN_OPTIONS=report_thread_leaks=0:suppressions=$(CURDIR)/tests/sanitizers/tsan.supp:log_path=$(TSAN_LOGS)/tsan
# Fails when a directory holds a report (a file that is not empty).
no_reports  = @if [ -n "$$(find $(1) -type f -size +0)" ]; then \
	echo "reports in $(1):"; find $(1) -type f -size +0 -exec head -60 {} +; exit 1; fi

# What `make check` runs under ASan+UBSan: the whole suite (~100 s) but
# - PHP, whose opcache is dlopen()ed with RTLD_DEEPBIND, which the ASan
#   runtime refuses (google/sanitizers#611): PHP exits before it serves;
# - test_shutdown_rdwr_close_exit: it holds only while each fork child gets
#   from shutdown(SHUT_RDWR) to close() before its reply is acknowledged
#   (~40 ms); slower under ASan and a loaded machine, the thread then carries
#   out the real SHUT_RD while the child still holds the socket, as decided,
#   and the client's next request draws a reset after the whole reply;
# - test_command.py: the command adds build/'s plain library itself;
# - test_memory_commit.py: it measures VmData, of which ASan's shadow
#   memory is terabytes;
# - test_shape.py: it traces a library of its own (build-shape/);
# - to keep `make check` within its 15 minutes, what repeats paths the rest
#   already takes through the shim: the 30-run Node.js scenarios, the A/B
#   and hostile-peer loads, the race and signal stress (test_stress.py), and
#   the command's tools (conf file, install, report, ports) and
#   test_nonroot.py (the test harness's own, no shim); `make sanitized-all`
#   runs every test but the first three.
SAN_SKIP    := --ignore=tests/test_command.py --ignore=tests/test_memory_commit.py \
	--ignore=tests/test_shape.py
SAN_K       := not test_php_builtin_server and not test_shutdown_rdwr_close_exit
SAN_TESTS   ?= tests $(SAN_SKIP) --ignore=tests/test_abtest.py --ignore=tests/test_hostile.py \
	--ignore=tests/test_conf.py --ignore=tests/test_install.py --ignore=tests/test_report.py \
	--ignore=tests/test_ports.py --ignore=tests/test_nonroot.py --ignore=tests/test_stress.py \
	-k "$(SAN_K) and not test_nodejs_many_runs"
# The threaded tests (hand-off to the thread, close storms in an event loop
# and a thread per connection, the thread's start and its pauses, the stats
# counted by the program's threads and the shim's and written from both):
# what TSan runs. TSan follows the preload into these hosts; its
# own background thread is one more than the program's, which
# test_no_thread_unless_lingering counts, so that one is left out.
THREAD_TESTS ?= tests/test_background.py tests/test_pipeline.py tests/test_abtest.py \
	tests/test_noharm_threads.py tests/test_noharm_readside.py \
	-k "not test_no_thread_unless_lingering and not test_ab_50_on_nginx_workers"

sanitized-unit: asan
	$(MAKE) SAN=asan unit

sanitized-integration: asan all
	rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	$(ASAN_ENV) $(NEEDS) python3-pytest -- $(PYTHON) -m pytest -q $(SAN_TESTS)
	$(call no_reports,$(ASAN_LOGS))

sanitized-all: asan all
	$(MAKE) sanitized-integration SAN_TESTS='tests $(SAN_SKIP) -k "$(SAN_K) and not test_ten_thousand"'

# TSan: the unit tests (the thread and the wrappers in one process) and the
# threaded namespace tests (~2 minutes).
tsan-check: tsan all
	$(MAKE) SAN=tsan unit
	rm -rf $(TSAN_LOGS) && mkdir -p $(TSAN_LOGS)
	$(TSAN_ENV) $(NEEDS) python3-pytest -- $(PYTHON) -m pytest -q $(THREAD_TESTS)
	$(call no_reports,$(TSAN_LOGS))

# The race stress (tests/test_stress.py) under TSan, not in check: a
# quarter of the iterations, and forks given 500 ms each (a fork takes a
# few hundred ms under TSan here). The suppressions: tsan.supp and, for this
# run only, the stress program's deliberate race (tsan-stress.supp). Left
# out: the signal storm. TSan defers a program's signal handler to the
# thread's next entry to or exit from one of its interceptors, never an
# arbitrary instruction of the shim's (what that test is about), and runs
# it not at all while the thread blocks in accept4(): the test's at-exit
# phase then hangs under TSan alone, without the shim (measured).
TSAN_STRESS_SUPP := $(CURDIR)/build-tsan/stress.supp
tsan-stress: tsan all
	rm -rf $(TSAN_LOGS) && mkdir -p $(TSAN_LOGS)
	cat tests/sanitizers/tsan.supp tests/sanitizers/tsan-stress.supp > $(TSAN_STRESS_SUPP)
	$(TSAN_ENV) TSAN_OPTIONS=report_thread_leaks=0:suppressions=$(TSAN_STRESS_SUPP):log_path=$(TSAN_LOGS)/tsan \
		STRESS_SCALE=0.25 STRESS_FORK_MS=500 $(NEEDS) python3-pytest -- \
		$(PYTHON) -m pytest -q -s tests/test_stress.py -k "not test_close_from_a_signal_handler"
	$(call no_reports,$(TSAN_LOGS))

# Valgrind memcheck on the shim in its hosts (tests/valgrind/: the wrapper
# and the suppressions, each a tool limitation): the test apps of the
# pipeline and background tests, every server model. Left out, as they
# measure time valgrind stretches: the total linger bound and the in-place
# linger at a container init child's exit. (Helgrind is not used: it does not
# model C11 atomics, which is everything the shim shares between threads, so
# it reports each of them; TSan, which does, follows the preload here.)
VG_WRAP     := $(CURDIR)/tests/valgrind/wrap.sh
MEMCHECK_TESTS ?= tests/test_pipeline.py tests/test_background.py \
	-k "not test_peer_that_never_stops and not test_exit_of_a_container_inits_child"

valgrind: all
	rm -rf $(VG_LOGS) && mkdir -p $(VG_LOGS)
	VG_LOGS=$(VG_LOGS) TEST_WRAPPER="$(VG_WRAP) memcheck" $(PYTHON) -m pytest -q $(MEMCHECK_TESTS)
	$(call no_reports,$(VG_LOGS))

# The path a close and a shutdown take through the shim's files, printed
# (tests/test_shape.py, which `make check` runs, asserts it).
shape: all
	$(MAKE) SAN=shape build-shape/libsafeclose.so
	$(PYTHON) -m pytest -q -s tests/test_shape.py

# CPython's tests (see cpython) against the ASan+UBSan library; ~2x the time
# of the plain run, so not part of check.
sanitized-cpython: asan all
	rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	$(ASAN_ENV) $(PYTHON) tests/cpython/run.py $(ASAN_RT):$(CURDIR)/build-asan/libsafeclose.so
	$(call no_reports,$(ASAN_LOGS))

# The race and signal stress and the hostile peers, longer: ten times the
# iterations (STRESS_SCALE, tests/harness/stress.py), 30 000 connections
# through http.server (2.5 minutes here). `make check` runs the short version.
# (Under TSan: make tsan-stress.)
stress: all
	STRESS_SCALE=10 $(PYTHON) -m pytest -q -s tests/test_stress.py tests/test_hostile.py

# CPython's own socket, subprocess, os, posix, signal and asyncio tests,
# without and with the shim, side by side: nothing may fail only with it
# (~3 minutes).
cpython: all
	$(NEEDS) libpython3.11-testsuite -- $(PYTHON) tests/cpython/run.py $(BUILD)/libsafeclose.so

# Static analysis (~50 s, in check), every finding fatal: gcc's
# -fanalyzer, cppcheck and clang's analyzer on shim/, cmd/ and tools/
# (tests/lint.sh; a finding that is a tool's mistake is suppressed where it
# is, with the reason).
lint: deps $(BUILD)/paths.h
	$(NEEDS) clang cppcheck -- sh tests/lint.sh $(CC) $(BUILD)

# libFuzzer (Debian's clang) on the settings parsers: tests/fuzz/ holds a
# target per parser (the environment through the settings table, the
# settings file, the SAFECLOSE_PORTS list), each checking properties of
# what it parsed (in range, nothing written around it, the same as a
# reference or a round trip), a seed corpus per target (real values, the
# README's and conf/safeclose.conf's) and one dictionary; tests/fuzz/run.sh
# runs one. `make fuzz-short` (in check): 5 s a target; `make fuzz`:
# FUZZ_TIME s each (3 minutes: 9 in all).
FUZZ_CC      := clang
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SRCS    := shim/config.c shim/conffile.c shim/ports.c shim/log.c
FUZZ_FLAGS   := $(STD) $(WARN) -O1 -g -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer -Ishim \
	-fsanitize-coverage-ignorelist=tests/fuzz/coverage.ignore
FUZZ_TIME    ?= 180

build-fuzz/%: tests/fuzz/%.c tests/fuzz/check.h tests/fuzz/coverage.ignore $(FUZZ_SRCS) $(wildcard shim/*.h)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRCS)

fuzz-build: $(FUZZ_NAMES:%=build-fuzz/fuzz_%)

fuzz-short: deps
	@$(NEEDS) clang libclang-rt-14-dev -- $(MAKE) --no-print-directory fuzz-run FUZZ_TIME=5

fuzz-run: fuzz-build
	@set -e; for t in $(FUZZ_NAMES); do sh tests/fuzz/run.sh $$t $(FUZZ_TIME); done

fuzz: deps fuzz-build
	@set -e; for t in $(FUZZ_NAMES); do sh tests/fuzz/run.sh $$t $(FUZZ_TIME); done

check: deps all lint unit fuzz-short integration check-user sanitized-unit sanitized-integration tsan-check cpython

demo: deps all
	$(PYTHON) tests/demo.py

# make bench: throughput and CPU per request against nginx, drain cost,
# close() latency and scale (BENCHMARKS.md; BENCH_QUICK=1 for a fast pass);
# make bench-profile: where the shim's time goes (perf, strace -c) under
# nginx. Neither is part of make check.
bench-deps:
	@sh tests/install-deps.sh bench

bench: bench-deps all $(BENCHES)
	$(PYTHON) bench/run

bench-profile: bench-deps all
	$(PYTHON) bench/profile

# make deb: the Debian packages libsafeclose and safeclose, built by
# dpkg-buildpackage from a copy of the sources under $(BUILD)/deb (its
# results land beside that copy, not beside this tree), then checked:
# lintian without errors, dpkg -i and a run from the installed paths.
DEB_DIR := $(BUILD)/deb
DEB_SRC := $(DEB_DIR)/libsafeclose-$(VERSION)

deb:
	@sh tests/install-deps.sh deb
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	cp -r Makefile README.md LICENSE shim cmd tools man conf debian $(DEB_SRC)/
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc
	sh tests/deb-check.sh $(DEB_DIR)

clean:
	rm -rf build build-asan build-ubsan build-tsan build-fuzz build-shape
