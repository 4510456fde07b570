# pruned: build, install and check the daemon with its systemd integration.
#
#   make build                      swift build -c release --static-swift-stdlib
#   sudo make install               binaries, system + user units, sysusers.d, tmpfiles.d
#   sudo make install PREFIX=/usr   ExecStart= follows PREFIX (units are generated from *.in)
#   make install DESTDIR=/tmp/pkg   staged install (packaging)
#   sudo make uninstall             removes the installed files (not the user, not the state)
#   make install-user               for one researcher, no root: binaries in ~/.local/bin, user units
#                                   in ~/.config/systemd/user (then: systemctl --user enable --now pruned.socket)
#   make check-units                systemd-analyze verify on the generated units
#   make man                        regenerate docs/man/*.1 (swift-argument-parser's generate-manual)
#   sudo make test-systemd          the real-systemd container test (tests/systemd/run.sh)
#
# `install` never builds: run `make build` as your user first (a build as root leaves root-owned
# files in .build). BUILDDIR points at another build, e.g. BUILDDIR=.build-static/release.

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
SYSTEMDSYSTEMUNITDIR ?= $(LIBDIR)/systemd/system
SYSTEMDUSERUNITDIR   ?= $(LIBDIR)/systemd/user
SYSUSERSDIR ?= $(LIBDIR)/sysusers.d
TMPFILESDIR ?= $(LIBDIR)/tmpfiles.d
DESTDIR  ?=

SWIFT      ?= swift
SCRATCH    ?= .build
SWIFTFLAGS ?= -c release --static-swift-stdlib
BUILDDIR   ?= $(SCRATCH)/release

SYSTEMD_ANALYZE ?= systemd-analyze

# Installed executables: pruned always, prunectl when the build has it.
OPTIONAL_BINS = prunectl

.PHONY: man all build install install-user uninstall check-units test-systemd clean-units help

all: build

help:
	@sed -n '2,13s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

build:
	$(SWIFT) build $(SWIFTFLAGS) --scratch-path $(SCRATCH)

# $(call gen,TEMPLATE,OUTPUT): a unit with @bindir@ replaced, mode 0644.
define gen
	sed -e 's|@bindir@|$(BINDIR)|g' $(1) > $(2).tmp && chmod 0644 $(2).tmp && mv -f $(2).tmp $(2)
endef

install:
	@test -x $(BUILDDIR)/pruned || { echo "make: $(BUILDDIR)/pruned not found: run 'make build' first (or set BUILDDIR=)" >&2; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR) $(DESTDIR)$(SYSTEMDUSERUNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(BUILDDIR)/pruned $(DESTDIR)$(BINDIR)/pruned
	@for b in $(OPTIONAL_BINS); do \
		if [ -x $(BUILDDIR)/$$b ]; then echo "install -m 0755 $(BUILDDIR)/$$b $(DESTDIR)$(BINDIR)/$$b"; \
			install -m 0755 $(BUILDDIR)/$$b $(DESTDIR)$(BINDIR)/$$b || exit 1; fi; \
	done
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(call gen,systemd/pruned.service.in,$(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/pruned.service)
	install -m 0644 systemd/pruned.socket $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/pruned.socket
	$(call gen,systemd/user/pruned.service.in,$(DESTDIR)$(SYSTEMDUSERUNITDIR)/pruned.service)
	install -m 0644 systemd/user/pruned.socket $(DESTDIR)$(SYSTEMDUSERUNITDIR)/pruned.socket
	install -m 0644 systemd/sysusers.d/pruned.conf $(DESTDIR)$(SYSUSERSDIR)/pruned.conf
	install -m 0644 systemd/tmpfiles.d/pruned.conf $(DESTDIR)$(TMPFILESDIR)/pruned.conf
	@if [ -z "$(DESTDIR)" ]; then \
		echo; echo "Installed. To create the user and directories and start the socket:"; \
		echo "  systemd-sysusers && systemd-tmpfiles --create pruned.conf && systemctl daemon-reload"; \
		echo "  systemctl enable --now pruned.socket pruned.service"; \
		echo "  usermod -aG pruned RESEARCHER        # who may use the daemon"; fi

man:
	$(SWIFT) package --allow-writing-to-package-directory generate-manual
	install -d docs/man
	cp .build/plugins/GenerateManual/outputs/prunectl/*.1 .build/plugins/GenerateManual/outputs/pruned/*.1 docs/man/

install-user:
	@test -x $(BUILDDIR)/pruned || { echo "make: $(BUILDDIR)/pruned not found: run 'make build' first (or set BUILDDIR=)" >&2; exit 1; }
	install -d $(HOME)/.local/bin $(HOME)/.config/systemd/user
	install -m 0755 $(BUILDDIR)/pruned $(HOME)/.local/bin/pruned
	@if [ -x $(BUILDDIR)/prunectl ]; then install -m 0755 $(BUILDDIR)/prunectl $(HOME)/.local/bin/prunectl; fi
	$(MAKE) --no-print-directory BINDIR=$(HOME)/.local/bin _gen-user
	install -m 0644 systemd/user/pruned.socket $(HOME)/.config/systemd/user/pruned.socket

_gen-user:
	$(call gen,systemd/user/pruned.service.in,$(HOME)/.config/systemd/user/pruned.service)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pruned $(addprefix $(DESTDIR)$(BINDIR)/,$(OPTIONAL_BINS))
	rm -f $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/pruned.service $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/pruned.socket
	rm -f $(DESTDIR)$(SYSTEMDUSERUNITDIR)/pruned.service $(DESTDIR)$(SYSTEMDUSERUNITDIR)/pruned.socket
	rm -f $(DESTDIR)$(SYSUSERSDIR)/pruned.conf $(DESTDIR)$(TMPFILESDIR)/pruned.conf
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/pruned*.1 $(DESTDIR)$(PREFIX)/share/man/man1/prunectl*.1
	@if [ -z "$(DESTDIR)" ]; then \
		echo; echo "Kept: the pruned user and group, /var/lib/pruned (runs, checkpoints), /var/cache/pruned."; \
		echo "Stop the units first if they still run: systemctl disable --now pruned.socket pruned.service"; fi

# Installs into a temporary PREFIX (so that ExecStart= names an existing executable: the real
# build when there is one, else a stand-in script) and verifies the generated units there.
# Any message from systemd-analyze verify fails the check.
check-units:
	@set -eu; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	bindir=$(BUILDDIR); \
	if [ ! -x "$$bindir/pruned" ]; then \
		echo "check-units: no $(BUILDDIR)/pruned, verifying against a stand-in executable"; \
		bindir=$$tmp/stand-in; mkdir -p "$$bindir"; printf '#!/bin/sh\nexit 0\n' > "$$bindir/pruned"; chmod 0755 "$$bindir/pruned"; \
	fi; \
	$(MAKE) --no-print-directory install PREFIX=$$tmp/usr DESTDIR= BUILDDIR="$$bindir" >/dev/null; \
	sys=$$tmp/usr/lib/systemd/system; usr=$$tmp/usr/lib/systemd/user; fail=0; \
	echo "systemd-analyze verify $$sys/pruned.socket $$sys/pruned.service"; \
	out=$$($(SYSTEMD_ANALYZE) verify --man=no "$$sys/pruned.socket" "$$sys/pruned.service" 2>&1) || fail=1; \
	if [ -n "$$out" ]; then echo "$$out"; fail=1; fi; \
	echo "systemd-analyze --user verify $$usr/pruned.socket $$usr/pruned.service"; \
	mkdir -m 0700 "$$tmp/xdg"; \
	out=$$(XDG_RUNTIME_DIR=$$tmp/xdg $(SYSTEMD_ANALYZE) --user verify --man=no "$$usr/pruned.socket" "$$usr/pruned.service" 2>&1) || fail=1; \
	if [ -n "$$out" ]; then echo "$$out"; fail=1; fi; \
	grep -q "^ExecStart=$$tmp/usr/bin/pruned daemon" "$$sys/pruned.service" || { echo "check-units: ExecStart does not follow PREFIX"; fail=1; }; \
	if [ $$fail = 0 ]; then echo "check-units: OK"; else echo "check-units: FAILED"; exit 1; fi

test-systemd:
	tests/systemd/run.sh
