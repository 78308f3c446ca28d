#!/usr/bin/env bash
# fingerd on a real Debian 13 (trixie) system.
#
# Builds a trixie root with debootstrap (cached outside the clone, in
# $TRIXIE_CACHE, default /var/cache/openfinger: rebuilt only when missing or
# built with another package list), creates users with trixie's own useradd
# (HOME_MODE 0700) and adduser, and records logins the way trixie does: real
# PAM sessions through pam_lastlog2 and pam_wtmpdb (login's and su's own PAM
# stacks, opened on a terminal and from a remote host by pamtester; su -
# without a tty) and a boot entry by the wtmpdb tool. It then
# runs fingerd inside the root, started as root with contrib/fingerd.toml
# (only the listen address changed), in a private mount and network
# namespace, and checks that:
#   - what fingerd and our client show agrees with trixie's own lastlog2 and
#     last, and "Never logged in." shows only for the user who never did;
#   - the Landlock view holds the databases;
#   - a lastlog2 database replaced by a corrupt file while fingerd runs gives
#     no line and one log line, and the good file renamed back the line again;
#   - 0700 homes work: a world-readable .plan shows, and a .nofinger hides the
#     user exactly like an unknown user.
# One PASS/FAIL line per check, then "N passed, N failed"; the exit status is
# non-zero when a check fails.
#
# Needs root, debootstrap, unshare and ip (iproute2), and Go to build fingerd.
# The debootstrap uses the Debian mirror of this host's APT sources.
set -euo pipefail
cd "$(dirname "$0")/../.."

PREFIX=ll2trixie
CACHE_DIR=${TRIXIE_CACHE:-/var/cache/openfinger}
CACHE=$CACHE_DIR/trixie-root.tar
# What the root holds; changing the list rebuilds the cache.
PACKAGES=libpam-lastlog2,lastlog2,wtmpdb,libpam-wtmpdb,adduser,login,passwd,util-linux,pamtester
CACHE_KEY="debootstrap --variant=minbase --include=$PACKAGES trixie (3)"

die() { echo "trixie: $*" >&2; exit 1; }

# ---------------------------------------------------------------- inner phase
# Runs in the private mount and network namespace: $1 is the work directory.
if [ "${1:-}" = --inner ]; then
	WORK=$2
	ROOT=$WORK/root
	pass=0 fail=0
	check() { # check NAME CONDITION-RESULT(0/1) [DETAIL]
		if [ "$2" = 0 ]; then
			echo "PASS: $1"
			pass=$((pass + 1))
		else
			echo "FAIL: $1${3:+ ($3)}"
			fail=$((fail + 1))
		fi
	}
	# Every command in the root is bounded: a step that hangs fails the run
	# within minutes instead of holding it until the CI limit.
	in_root() {
		local rc=0
		timeout -k 5 "${TRIXIE_STEP_TIMEOUT:-120}" chroot "$ROOT" "$@" || rc=$?
		case $rc in 124 | 137)
			echo "trixie: did not finish within ${TRIXIE_STEP_TIMEOUT:-120}s in the root: $*" >&2
			return 1 # not 124: that would read as the whole suite's time limit
			;;
		esac
		return "$rc"
	}
	FINGERD_PID=
	inner_cleanup() {
		if [ -n "$FINGERD_PID" ] && kill -0 "$FINGERD_PID" 2>/dev/null; then
			kill "$FINGERD_PID"
			wait "$FINGERD_PID" 2>/dev/null || true
		fi
		for m in dev sys proc; do
			umount "$ROOT/$m" 2>/dev/null || umount -l "$ROOT/$m" 2>/dev/null || true
		done
	}
	trap inner_cleanup EXIT
	# A time limit's TERM (or ^C) ends the run through the same cleanup.
	trap 'exit 143' TERM
	trap 'exit 130' INT

	ip link set lo up
	mount --bind /proc "$ROOT/proc"
	mount --bind /sys "$ROOT/sys"
	mount --bind /dev "$ROOT/dev"

	# What systemd-tmpfiles does at boot for the two packages: the lastlog2
	# directory, and wtmpdb's directory with its symbolic link.
	for conf in "$ROOT"/usr/lib/tmpfiles.d/lastlog2-tmpfiles.conf "$ROOT"/usr/lib/tmpfiles.d/wtmpdb.conf; do
		while read -r type path mode _ _ _ arg; do
			case $type in
			d) mkdir -p "$ROOT$path" && chmod "$mode" "$ROOT$path" ;;
			L) [ -e "$ROOT$path" ] || [ -L "$ROOT$path" ] || ln -s "$arg" "$ROOT$path" ;;
			esac
		done < <(grep -v '^#' "$conf" | grep .)
	done

	# Users, with trixie's own tools.
	A=${PREFIX}a B=${PREFIX}b C=${PREFIX}c D=${PREFIX}d E=${PREFIX}e
	in_root useradd -m -c "Ll2 Alpha" "$A"
	in_root adduser --quiet --disabled-password --comment "Ll2 Bravo" "$B"
	in_root useradd -m -c "Ll2 Charlie" "$C" # never logs in
	in_root useradd -m -c "Ll2 Delta" "$D"
	in_root adduser --quiet --disabled-password --comment "Ll2 Hidden Echo" "$E"
	for u in "$A" "$B" "$C" "$E"; do
		mode=$(stat -c %a "$ROOT/home/$u")
		check "$u's home made by trixie's tools has mode 0700" "$([ "$mode" = 700 ]; echo $?)" "mode $mode"
	done
	# A world-readable .plan in a 0700 home, and a .nofinger in another.
	in_root su "$A" -s /bin/sh -c 'umask 022; printf "Working on %s.\n" "the ll2 trixie plan" > ~/.plan'
	in_root su "$E" -s /bin/sh -c 'umask 022; echo x > ~/.plan; : > ~/.nofinger'

	# Login records, the way trixie makes them: real PAM sessions.
	# Sessions on a terminal are opened and closed on the PAM stacks of
	# login(1) and su(1) themselves (/etc/pam.d/login and su-l: pam_lastlog2
	# and pam_wtmpdb from common-session) with the items those programs set,
	# PAM_TTY and, for a login from a remote host, PAM_RHOST, by pamtester.
	# No shell runs on a pty, so nothing waits for a terminal: login -f under
	# script(1) never ended on one CI machine (its shell did not even read
	# ~/.profile) and held the run until its time limit.
	session() { # session SERVICE USER TTY [RHOST]
		in_root pamtester ${4:+-I "rhost=$4"} -I "tty=$3" "$1" "$2" open_session close_session >/dev/null
	}
	session login "$A" pts/7 "$PREFIX-a.example"
	session su-l "$B" pts/1
	in_root su - "$B" -c true # the real su, and the last one: no tty
	session su-l "$D" pts/0
	session login "$E" pts/8 "$PREFIX-e.example"
	# The wtmpdb tool's boot entry, newer than every login: not a login.
	in_root wtmpdb boot >/dev/null 2>&1

	# fingerd, as root with the shipped configuration; only listen changes.
	sed 's/^listen = \[":79"\]$/listen = ["127.0.0.1:79"]/' contrib/fingerd.toml >"$ROOT/etc/fingerd.toml"
	if diff -q contrib/fingerd.toml "$ROOT/etc/fingerd.toml" >/dev/null; then
		die "contrib/fingerd.toml has no listen = [\":79\"] line to change"
	fi
	# The Landlock view holds the databases as trixie lays them out (the
	# wtmpdb link resolved to /var/log/wtmp.db), never all of /var/log.
	view=$(in_root /usr/local/sbin/fingerd -config /etc/fingerd.toml -check-config 2>&1 |
		sed -n '/^# Landlock view of the serving process/,/^# Landlock view of the home reader/p')
	for rule in "dir /var/lib/lastlog" "file /var/lib/lastlog/lastlog2.db" "file /var/log/wtmp.db"; do
		check "the Landlock view has $rule" "$(grep -qx "#   $rule" <<<"$view"; echo $?)"
	done
	check "the Landlock view does not have all of /var/log" "$(! grep -qx '#   dir /var/log' <<<"$view"; echo $?)"
	# chroot itself, not the in_root function: a function in the background is a subshell,
	# and $! would name the subshell instead of fingerd.
	chroot "$ROOT" /usr/local/sbin/fingerd -config /etc/fingerd.toml >"$WORK/fingerd.log" 2>&1 &
	FINGERD_PID=$!
	for _ in $(seq 100); do
		grep -q 'fingerd: started' "$WORK/fingerd.log" && break
		kill -0 "$FINGERD_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'fingerd: started' "$WORK/fingerd.log" || { cat "$WORK/fingerd.log" >&2; die "fingerd did not start"; }
	check "fingerd started as root drops its privileges" "$(grep -q 'fingerd: dropped privileges' "$WORK/fingerd.log"; echo $?)"

	# raw NAME: the server's reply, bytes as sent.
	raw() {
		exec 3<>/dev/tcp/127.0.0.1/79
		printf '%s\r\n' "$1" >&3
		cat <&3
		exec 3<&-
	}
	client() { "$WORK/bin/finger" "$1@127.0.0.1"; }

	# The truth from trixie's own tools, as "EPOCH|TTY|HOST" ("" if none).
	from_lastlog2() {
		in_root lastlog2 -u "$1" | awk '
			NR == 1 { p = index($0, "Port"); f = index($0, "From"); l = index($0, "Latest"); next }
			{ tty = substr($0, p, f - p); host = substr($0, f, l - f); t = substr($0, l)
			  gsub(/ +$/, "", tty); gsub(/ +$/, "", host); gsub(/ +$/, "", t)
			  print t "|" tty "|" host }' | {
			IFS='|' read -r t tty host
			case $t in "" | *Never*) echo "" ;; *) echo "$(date -d "$t" +%s)|$tty|$host" ;; esac
		}
	}
	from_last() {
		in_root last -j -n 1 --time-format iso "$1" | awk -F'"' '
			$2 == "tty" { tty = $4 } $2 == "hostname" { host = $4 } $2 == "login" { t = $4 }
			END { if (t != "") print t "|" tty "|" host }' | {
			IFS='|' read -r t tty host
			[ -n "$t" ] && echo "$(date -d "$t" +%s)|$tty|$host" || echo ""
		}
	}
	# fingerd's rendering of a record (the root's time zone, as fingerd).
	render() {
		IFS='|' read -r t tty host <<<"$1"
		line="Last login $(in_root date -d "@$t" '+%a %b %e %H:%M (%Z)')"
		[ -n "$tty" ] && line+=" on $tty"
		[ -n "$host" ] && line+=" from $host"
		echo "$line"
	}

	for u in "$A" "$B" "$D" "$E"; do
		[ "$u" = "$E" ] && continue # hidden: checked below
		l2=$(from_lastlog2 "$u")
		la=$(from_last "$u")
		echo "trixie: $u: lastlog2 says '${l2}', last says '${la}'"
		newest=$l2
		if [ -n "$la" ] && { [ -z "$l2" ] || [ "${la%%|*}" -gt "${l2%%|*}" ]; }; then newest=$la; fi
		if [ -n "$l2" ] && [ -n "$la" ]; then
			check "$u: lastlog2 and last agree on tty and host" "$([ "${l2#*|}" = "${la#*|}" ]; echo $?)" "lastlog2 '$l2', last '$la'"
		fi
		check "$u: trixie's tools have a record" "$([ -n "$newest" ]; echo $?)"
		want=$(render "$newest")
		got=$(raw "$u" | tr -d '\r' | grep -E '^(Last login|Never logged in)' || true)
		check "$u: fingerd shows '$want'" "$([ "$got" = "$want" ]; echo $?)" "got '$got'"
		got=$(client "$u" | grep -E '^(Last login|Never logged in)' || true)
		check "$u: finger $u@host shows '$want'" "$([ "$got" = "$want" ]; echo $?)" "got '$got'"
	done
	l2=$(from_lastlog2 "$C")
	la=$(from_last "$C")
	check "$C: trixie's tools have no record" "$([ -z "$l2$la" ]; echo $?)" "lastlog2 '$l2', last '$la'"
	got=$(raw "$C" | tr -d '\r' | grep -E '^(Last login|Never logged in)' || true)
	check "$C: fingerd shows 'Never logged in.'" "$([ "$got" = "Never logged in." ]; echo $?)" "got '$got'"
	got=$(client "$C" | grep -E '^(Last login|Never logged in)' || true)
	check "$C: finger $C@host shows 'Never logged in.'" "$([ "$got" = "Never logged in." ]; echo $?)" "got '$got'"
	n=$(for u in "$A" "$B" "$D"; do raw "$u"; done | grep -c 'Never logged in' || true)
	check "no user who logged in is shown as never logged in" "$([ "$n" = 0 ]; echo $?)" "$n"
	check "fingerd logged no last-login failure" "$(! grep -q 'logins: cannot read' "$WORK/fingerd.log"; echo $?)"

	# The lastlog2 database replaced (renamed over) by a corrupt file while
	# fingerd runs: no last-login line, no error text, one warning for
	# however many queries; the good file renamed back: the line is back.
	want_a=$(raw "$A" | tr -d '\r' | grep -E '^Last login' || true)
	db=$ROOT/var/lib/lastlog/lastlog2.db
	cp -p "$db" "$WORK/lastlog2.good"
	head -c 8192 /dev/urandom >"$db.new" && chmod 0644 "$db.new" && mv "$db.new" "$db"
	sleep 2 # past fingerd's one-second cache
	replies=$(for _ in 1 2 3 4 5; do raw "$A"; done | tr -d '\r')
	check "$A: a corrupt lastlog2 database gives no last-login line and no error text" \
		"$(! grep -qiE 'Last login|Never logged in|sqlite|database|logins' <<<"$replies"; echo $?)" \
		"$(grep -iE 'Last login|Never|sqlite|database|logins' <<<"$replies" | head -1)"
	n=$(grep -c 'logins: cannot read' "$WORK/fingerd.log" || true)
	check "fingerd logged the corrupt database once for 5 queries" "$([ "$n" = 1 ]; echo $?)" "$n lines"
	cp -p "$WORK/lastlog2.good" "$db.new" && mv "$db.new" "$db"
	sleep 2
	got=$(raw "$A" | tr -d '\r' | grep -E '^Last login' || true)
	check "$A: the good database renamed back shows '$want_a' again" "$([ "$got" = "$want_a" ]; echo $?)" "got '$got'"
	check "fingerd logged that the database is readable again" \
		"$(grep -q 'logins: last logins readable again' "$WORK/fingerd.log"; echo $?)"

	# 0700 homes.
	got=$(raw "$A" | tr -d '\r')
	check "$A: the world-readable .plan in a 0700 home shows" \
		"$(grep -q '^Working on the ll2 trixie plan\.$' <<<"$got"; echo $?)" "$(grep -m1 -E 'Plan' <<<"$got" || echo no plan line)"
	hidden_login=$(raw "$E")
	hidden_name=$(raw "Echo")
	check "$E: fingerd does not show the .nofinger user" \
		"$(! grep -qE "Login: *$E|Hidden Echo|$PREFIX-e.example" <<<"$hidden_login$hidden_name"; echo $?)" \
		"$(printf '%q' "$hidden_login")"
	# The same questions once the account is gone: the replies must be
	# byte for byte the same.
	in_root userdel -r "$E" 2>/dev/null
	sleep 2 # past fingerd's one-second caches
	unknown_login=$(raw "$E")
	unknown_name=$(raw "Echo")
	check "$E: the reply for a .nofinger user is byte-identical to an unknown user's (by login)" \
		"$([ "$hidden_login" = "$unknown_login" ]; echo $?)" "$(printf '%q vs %q' "$hidden_login" "$unknown_login")"
	check "$E: the same by real name" "$([ "$hidden_name" = "$unknown_name" ]; echo $?)" \
		"$(printf '%q vs %q' "$hidden_name" "$unknown_name")"

	kill "$FINGERD_PID"
	wait "$FINGERD_PID" 2>/dev/null || true
	FINGERD_PID=
	left=$(for p in /proc/[0-9]*; do [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"; done; true)
	check "no process is left in the root once fingerd is stopped" "$([ -z "$left" ]; echo $?)" "$left"
	grep -E 'level=(WARN|ERROR)' "$WORK/fingerd.log" | sed 's/^/trixie: fingerd logged: /' || true
	echo "trixie: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
fi

# ---------------------------------------------------------------- outer phase
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, namespaces)"
for tool in debootstrap unshare ip chroot go; do
	command -v "$tool" >/dev/null || die "needs $tool"
done

# The Debian mirror of this host's APT sources (not the security archive).
mirror=$(
	{
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" {for (i = 2; i <= NF; i++) print $i}'
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {print ($2 ~ /^\[/) ? $3 : $2}'
	} | grep -v security | grep '/debian/*$' | head -n 1
) || true
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*"

WORK=$(mktemp -d "/tmp/$PREFIX.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
# A time limit's TERM (or ^C) ends the run through the same cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT

start=$(date +%s)
mkdir -p "$CACHE_DIR"
(
	flock 9
	if [ -f "$CACHE" ] && [ "$(cat "$CACHE.key" 2>/dev/null)" = "$CACHE_KEY" ] && tar -tf "$CACHE" ./usr/bin/lastlog2 >/dev/null 2>&1; then
		echo "trixie: using the cached root $CACHE"
	else
		echo "trixie: building the root with debootstrap from $mirror"
		rm -f "$CACHE" "$CACHE.key"
		debootstrap --variant=minbase --include="$PACKAGES" trixie "$WORK/build" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
			{ tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
		tar --numeric-owner -C "$WORK/build" -cf "$CACHE.tmp" .
		mv "$CACHE.tmp" "$CACHE"
		echo "$CACHE_KEY" >"$CACHE.key"
		rm -rf "$WORK/build"
	fi
) 9>"$CACHE_DIR/trixie.lock"
mkdir "$WORK/root"
tar --numeric-owner -C "$WORK/root" -xpf "$CACHE"
echo "trixie: root ready in $(($(date +%s) - start)) s"

mkdir "$WORK/bin"
go build -o "$WORK/bin/fingerd" ./cmd/fingerd
go build -o "$WORK/bin/finger" ./cmd/finger
install -m 0755 "$WORK/bin/fingerd" "$WORK/root/usr/local/sbin/fingerd"

# Nothing in the root reads the terminal or CI's standard input: every step gets /dev/null.
unshare --mount --net --propagation private bash "$0" --inner "$WORK" </dev/null
