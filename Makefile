# libsafeclose: `make` builds the shim, the safeclose command, the man pages
# and the test apps under build/; `make install PREFIX=/usr/local DESTDIR=`
# and `make uninstall` put them in place; `make deb` builds and checks the
# Debian packages;
# `make check` installs what the tests need (as root, from Debian packages),
# then runs the unit tests, the A/B integration tests and CPython's own
# regression tests without and with the shim; `make demo` shows
# the lost reply without the shim and the full reply with it.

ifeq ($(origin CC),default)
CC      := gcc
endif
PYTHON  ?= /usr/bin/python3
BUILD   := build
CFLAGS  ?= -O2 -g
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

.PHONY: FORCE all check install uninstall man deb deps unit integration cpython demo bench clean

MANPAGES := $(BUILD)/safeclose.1 $(BUILD)/libsafeclose.7
DROPIN   := $(BUILD)/systemd-dropin.conf

# The same shim with 2^12 ownership records instead of 2^18 (a build-time
# constant, not a setting), so that a test runs the books far past their
# size in a fraction of a second: tests/test_noharm_books.py.
SMALLBOOKS_OBJS := $(filter-out $(BUILD)/shim/ownership.o,$(SHIM_OBJS)) \
		   $(BUILD)/shim/ownership-smallbooks.o

all: $(BUILD)/libsafeclose.so $(BUILD)/libsafeclose-smallbooks.so $(APPS) $(TOOLS) \
	$(MANPAGES) $(DROPIN)

$(BUILD)/shim/%.o: shim/%.c $(wildcard shim/*.h) | $(BUILD)/shim
	$(CC) $(SHIM_CFLAGS) -c -o $@ $<

$(BUILD)/libsafeclose.so: $(SHIM_OBJS)
	$(CC) $(SHIM_LDFLAGS) -o $@ $^ $(SHIM_LIBS)

$(BUILD)/shim/ownership-smallbooks.o: shim/ownership.c $(wildcard shim/*.h) | $(BUILD)/shim
	$(CC) $(SHIM_CFLAGS) -DOWN_RECORDS_LOG2=12 -c -o $@ $<

$(BUILD)/libsafeclose-smallbooks.so: $(SMALLBOOKS_OBJS)
	$(CC) $(SHIM_LDFLAGS) -o $@ $^ $(SHIM_LIBS)

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

$(BUILD)/unit/%: tests/unit/%.c $(CORE_OBJS) $(wildcard shim/*.h) | $(BUILD)/unit
	$(CC) $(STD) $(WARN) $(CFLAGS) -Ishim -o $@ $< $(CORE_OBJS) -lcmocka $(SHIM_LIBS)

$(BUILD) $(BUILD)/shim $(BUILD)/unit:
	mkdir -p $@

deps:
	@sh tests/install-deps.sh

unit: $(UNITS)
	@set -e; for t in $(UNITS); do echo "== $$t"; $$t; done

integration: all
	$(PYTHON) -m pytest -q tests

# CPython's own socket, subprocess, os, posix, signal and asyncio tests,
# without and with the shim: nothing may fail only with it (~4 minutes).
cpython: all
	$(PYTHON) tests/cpython/run.py $(BUILD)/libsafeclose.so

check: deps all unit integration cpython

demo: deps all
	$(PYTHON) tests/demo.py

bench: deps all $(BENCHES)
	$(PYTHON) bench/run

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
	cp -r Makefile README.md shim cmd tools man conf debian $(DEB_SRC)/
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc
	sh tests/deb-check.sh $(DEB_DIR)

clean:
	rm -rf $(BUILD)
