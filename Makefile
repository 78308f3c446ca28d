# Each target is one documented command; .ci/run runs them all.
.PHONY: all build install deps test interop fuzz soak bench cluster mutants trixie

# Installation directories. The systemd units and the inetd line are
# installed with the path of fingerd under PREFIX; PREFIX=/usr puts
# fingerd in /usr/sbin and finger in /usr/bin, as Debian's packages do.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/openfinger
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
BUILDDIR ?= bin
GO ?= go

all: build

build:
	$(GO) build -o $(BUILDDIR)/fingerd ./cmd/fingerd
	$(GO) build -o $(BUILDDIR)/finger ./cmd/finger

# install copies the binaries, man pages, systemd units, the inetd line and
# the example configuration (as $(SYSCONFDIR)/fingerd.toml only when there
# is none yet: an existing configuration is never overwritten).
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)
	install -m 0755 $(BUILDDIR)/fingerd $(DESTDIR)$(SBINDIR)/fingerd
	install -m 0755 $(BUILDDIR)/finger $(DESTDIR)$(BINDIR)/finger
	install -m 0644 docs/finger.1 $(DESTDIR)$(MANDIR)/man1/finger.1
	install -m 0644 docs/fingerd.toml.5 $(DESTDIR)$(MANDIR)/man5/fingerd.toml.5
	install -m 0644 docs/fingerd.8 $(DESTDIR)$(MANDIR)/man8/fingerd.8
	sed -e 's|/usr/sbin/fingerd|$(SBINDIR)/fingerd|g' -e 's|/etc/fingerd.toml|$(SYSCONFDIR)/fingerd.toml|g' \
		contrib/systemd/fingerd.service >$(DESTDIR)$(UNITDIR)/fingerd.service
	install -m 0644 contrib/systemd/fingerd.socket $(DESTDIR)$(UNITDIR)/fingerd.socket
	chmod 0644 $(DESTDIR)$(UNITDIR)/fingerd.service
	sed -e 's|/usr/sbin/fingerd|$(SBINDIR)/fingerd|g' contrib/inetd.conf >$(DESTDIR)$(DOCDIR)/inetd.conf
	install -m 0644 contrib/fingerd.toml $(DESTDIR)$(DOCDIR)/fingerd.toml
	test -e $(DESTDIR)$(SYSCONFDIR)/fingerd.toml || \
		install -m 0644 contrib/fingerd.toml $(DESTDIR)$(SYSCONFDIR)/fingerd.toml

# deps installs the Debian packages the tests use (as root): the list is
# test/deps-debian.txt, which .ci/run reads too.
deps:
	apt-get install -y --no-install-recommends $$(sed 's/#.*//' test/deps-debian.txt)

test:
	go test -race ./...

interop:
	bash test/interop/run.sh

fuzz:
	bash test/fuzz.sh $(or $(FUZZTIME),5m)

soak:
	bash test/soak.sh -d $(or $(SOAK_SECONDS),1800)

bench:
	bash test/load/bench.sh -d $(or $(BENCH_SECONDS),10)

cluster:
	bash test/cluster/run.sh -d $(or $(CLUSTER_SECONDS),30)

# Named deliberate bugs (test/mutants) the tests must catch; MUTANTS=-short
# runs the short list CI runs.
mutants:
	go run ./test/mutants $(MUTANTS)

trixie:
	bash test/trixie/run.sh
