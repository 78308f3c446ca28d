#!/usr/bin/env bash
# Cluster suite: three fingerd replicas sharing one PostgreSQL store, behind HAProxy, each part
# a real process on a host of its own (a network namespace), all joined by a bridge that lives
# in a further namespace. Nothing is routed to or from the machine's own network.
#
#   10.80.0.2            PostgreSQL (Debian's postgresql, a private cluster in a temp dir)
#   10.80.0.11 .12 .13   fingerd replicas r1 r2 r3 (finger :79, HTTP :8079, metrics :9179)
#   10.80.0.20           HAProxy (contrib/haproxy.cfg, addresses from the environment)
#   10.80.1.0/24 on c1, 10.80.2.0/24 on c2   client hosts, many addresses each
#
# The scenarios print their figures as key=value lines; the run fails when one breaks its limit.
# Needs root and Debian's postgresql, haproxy, iproute2 and curl; installs nothing itself.
#
# Usage: test/cluster/run.sh [-d SECONDS] [-n PUBLISHES]
#   -d  length of each load phase (default 30)
#   -n  publishes for the visibility figure (default 1000)
# Environment: OFC_KEEP=1 keeps the namespaces and the work directory for inspection.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DUR=30
NPUB=1000
while getopts d:n: opt; do
	case $opt in
	d) DUR=$OPTARG ;;
	n) NPUB=$OPTARG ;;
	*) echo "usage: $0 [-d SECONDS] [-n PUBLISHES]" >&2; exit 2 ;;
	esac
done

die() { echo "cluster: $*" >&2; exit 2; }
say() { echo "cluster: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, PostgreSQL as its own user)"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || die "Debian's postgresql is not installed (apt-get install postgresql)"
command -v haproxy >/dev/null || die "haproxy is not installed (apt-get install haproxy)"
command -v curl >/dev/null || die "curl is not installed"
id postgres >/dev/null 2>&1 || die "the postgres account is missing (Debian's postgresql creates it)"

WORK=$(mktemp -d /tmp/ofc-cluster.XXXXXX)
chmod 0755 "$WORK"
TAG=ofc-$$-
NET=10.80
declare -A HOST=([pg]=0.2 [r1]=0.11 [r2]=0.12 [r3]=0.13 [lb]=0.20 [c1]=1.1 [c2]=2.1)
REPLICAS=(r1 r2 r3)
declare -A PID=()
FAILED=0
FIGURES=()

ns() { echo "${TAG}$1"; }
ip_of() { echo "$NET.${HOST[$1]}"; }
in_host() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

cleanup() {
	local h p
	for p in "${PID[@]}"; do kill "$p" 2>/dev/null; done
	[ -f "$WORK/pg/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop >/dev/null 2>&1
	sleep 0.3
	for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${OFC_KEEP:-0}" = 1 ]; then
		say "kept: namespaces ${TAG}*, work dir $WORK"
		return
	fi
	for h in "${!HOST[@]}" sw; do ip netns del "$(ns "$h")" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() { say "FAIL: $*"; FAILED=1; }
figure() { echo "$*"; FIGURES+=("$*"); }

# ------------------------------------------------------------------ hosts
make_hosts() {
	ip netns add "$(ns sw)" || die "ip netns add failed (no CAP_SYS_ADMIN?)"
	ip -n "$(ns sw)" link add br0 type bridge
	ip -n "$(ns sw)" link set br0 up
	local h i=0 n
	for h in "${!HOST[@]}"; do
		i=$((i + 1))
		ip netns add "$(ns "$h")"
		ip -n "$(ns "$h")" link set lo up
		ip link add "ofc$$h$i" netns "$(ns "$h")" type veth peer name "p$i" netns "$(ns sw)"
		ip -n "$(ns sw)" link set "p$i" master br0 up
		ip -n "$(ns "$h")" link set "ofc$$h$i" name eth0
		ip -n "$(ns "$h")" addr add "$(ip_of "$h")/16" dev eth0
		ip -n "$(ns "$h")" link set eth0 up
	done
	# Client hosts get 250 addresses each: load spreads over HAProxy's
	# source hash and stays under fingerd's per-address rate.
	for h in c1 c2; do
		local third=${HOST[$h]%%.*}
		for n in $(seq 2 250); do
			ip -n "$(ns "$h")" addr add "$NET.$third.$n/16" dev eth0
		done
	done
}

# start_bg NAME HOST CMD...: run CMD on HOST in the background, logging to $WORK/NAME.log.
start_bg() {
	local name=$1 h=$2; shift 2
	ip netns exec "$(ns "$h")" setsid "$@" >>"$WORK/$name.log" 2>&1 &
	PID[$name]=$!
}

wait_port() { # host port [seconds]
	local i
	for i in $(seq 1 $((${3:-10} * 10))); do
		in_host "$1" bash -c "exec 3<>/dev/tcp/$(ip_of "$1")/$2" 2>/dev/null && return 0
		sleep 0.1
	done
	say "nothing listens on $1:$2"
	return 1
}

# ------------------------------------------------------------------ PostgreSQL
PGPW=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_pg() {
	mkdir -p "$WORK/pg/sock"
	echo "$PGPW" >"$WORK/pg/pw"
	chown -R postgres: "$WORK/pg"
	as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -A scram-sha-256 -U postgres --pwfile="$WORK/pg/pw" >"$WORK/initdb.log" 2>&1 ||
		{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }
	echo "host all all $NET.0.0/16 scram-sha-256" >>"$WORK/pg/data/pg_hba.conf"
	pg_start || die "PostgreSQL did not start"
	psql_admin postgres -c "CREATE ROLE fingerd LOGIN PASSWORD '$PGPW'" -c "CREATE DATABASE fingerd OWNER fingerd" >/dev/null &&
		psql_admin fingerd -c "CREATE EXTENSION pg_stat_statements" >/dev/null || die "creating the role and database failed"
}
pg_start() {
	in_host pg setpriv --reuid=postgres --regid=postgres --init-groups -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
		-o "-p 5432 -k $WORK/pg/sock -c listen_addresses=$(ip_of pg) -c shared_preload_libraries=pg_stat_statements" start >/dev/null
}
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null; }
# psql_admin DB ARGS...: psql as the superuser over the private socket.
psql_admin() {
	local db=$1; shift
	in_host pg setpriv --reuid=postgres --regid=postgres --init-groups -- env PGPASSWORD="$PGPW" \
		"$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h "$WORK/pg/sock" -p 5432 -U postgres -d "$db" "$@"
}
STORE_URL="postgres://fingerd:$PGPW@$(ip_of pg):5432/fingerd"

# ------------------------------------------------------------------ fingerd replicas
write_replica_config() { # replica
	cat >"$WORK/$1.toml" <<TOML
[server]
listen = [":79"]
user = "nobody"
# HAProxy's address: it alone may send a PROXY header.
proxy_from = ["$(ip_of lb)"]

[metrics]
listen = ":9179"

[[virtual]]
login = "clustercheck"
name = "Cluster Check"
text = "answered by a replica\n"
TOML
}
start_replica() { # replica
	start_bg "$1" "$1" "$WORK/bin/fingerd" -config "$WORK/$1.toml"
	wait_port "$1" 79 && wait_port "$1" 9179
}

# ------------------------------------------------------------------ HAProxy
start_haproxy() {
	start_bg lb lb env FINGER_BIND=":79" WEB_BIND=":80" HAPROXY_SOCKET="$WORK/haproxy.sock" \
		FINGERD_1="$(ip_of r1)" FINGERD_2="$(ip_of r2)" FINGERD_3="$(ip_of r3)" \
		haproxy -db -f "$REPO/contrib/haproxy.cfg"
	wait_port lb 79
}
# haproxy_up BACKEND: how many of the backend's servers HAProxy sees up.
haproxy_up() {
	echo "show stat" | in_host lb socat - "UNIX-CONNECT:$WORK/haproxy.sock" 2>/dev/null |
		awk -F, -v b="$1" '$1 == b && $2 ~ /^fingerd[0-9]$/ && $18 ~ /^UP/ {n++} END {print n + 0}'
}
wait_haproxy_up() { # backend count seconds
	local i
	for i in $(seq 1 $(($3 * 10))); do
		[ "$(haproxy_up "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

load() { # HOST ARGS...: run the load tool on a client host
	local h=$1; shift
	in_host "$h" "$WORK/bin/clusterload" "$@"
}
metric() { # replica NAME: the sum of a metric's samples on a replica
	in_host c2 curl -s --max-time 5 "http://$(ip_of "$1"):9179/metrics" |
		awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d\n", s}'
}

# ------------------------------------------------------------------ scenarios

# A replica is killed (SIGKILL) under load through HAProxy, and started again. Only the
# connections in flight on it may fail.
scenario_kill_replica() {
	say "scenario: kill r2 under load, restart it"
	local out="$WORK/kill.out" rate=600 victim=r2
	load c1 finger -addr "$(ip_of lb):79" -src "$(ip_of c1)+250" -rate $rate -c 32 -duration "${DUR}s" \
		-query clustercheck -expect "answered by a replica" -label kill-replica -max-fail-pct 0.5 >"$out" 2>&1 &
	local lp=$!
	sleep $((DUR / 3))
	local before
	before=$(metric $victim fingerd_queries_total)
	kill -9 "${PID[$victim]}"
	wait "${PID[$victim]}" 2>/dev/null
	say "killed $victim (it had answered $before queries)"
	sleep 2
	start_replica $victim || fail "$victim did not restart"
	wait_haproxy_up fingerd 3 10 || fail "HAProxy did not see $victim up again"
	say "restarted $victim; HAProxy sees $(haproxy_up fingerd) finger servers up"
	wait $lp || fail "kill-replica: more than 0.5% of the queries failed"
	cat "$out"
	local after
	after=$(metric $victim fingerd_queries_total)
	[ "$after" -gt 0 ] || fail "the restarted $victim answered no query"
	figure "$(grep '^kill-replica: sent=' "$out") restarted_replica_answered=$after"
}

# fingerd's per-client limits apply to the real client address behind HAProxy: one address
# over its rate is refused while another address is still answered, and the replica logs the
# client's own address.
scenario_real_client() {
	say "scenario: per-client rate limit behind HAProxy"
	local flood=$NET.2.77 other=$NET.2.78 out="$WORK/limit.out"
	load c2 finger -addr "$(ip_of lb):79" -src "$flood" -n 60 -c 1 \
		-query clustercheck -expect "answered by a replica" -label flood >"$out" 2>&1
	grep -q 'rate-limited:' "$out" || fail "one address sending 60 queries at once was never rate-limited: $(cat "$out")"
	load c2 finger -addr "$(ip_of lb):79" -src "$other" -n 5 -c 1 \
		-query clustercheck -expect "answered by a replica" -label other -max-fail-pct 0 >>"$out" 2>&1 ||
		fail "another address was refused while the first was limited: $(cat "$out")"
	grep -h "remote=$flood:" "$WORK"/r?.log | grep -q . ||
		fail "no replica logged the client's own address $flood"
	figure "per-client-limit: $(grep '^flood: sent=' "$out" | sed 's/^flood: //')"
}

# ------------------------------------------------------------------ main
say "building"
mkdir -p "$WORK/bin"
(cd "$REPO" && go build -o "$WORK/bin/fingerd" ./cmd/fingerd &&
	go build -o "$WORK/bin/clusterload" ./test/cluster/clusterload) || die "go build failed"
chmod -R a+rX "$WORK/bin"
make_hosts
say "starting PostgreSQL on $(ip_of pg)"
start_pg
for r in "${REPLICAS[@]}"; do
	write_replica_config "$r"
	start_replica "$r" || die "replica $r did not start: $(tail -5 "$WORK/$r.log")"
done
say "starting HAProxy on $(ip_of lb)"
start_haproxy || die "HAProxy did not start: $(tail -5 "$WORK/lb.log")"
wait_haproxy_up fingerd 3 10 || die "HAProxy does not see the three replicas up: $(tail -5 "$WORK/lb.log")"

scenario_real_client
scenario_kill_replica

echo
echo "cluster figures:"
for f in "${FIGURES[@]}"; do echo "  $f"; done
if [ $FAILED != 0 ]; then
	echo "cluster: FAILED"
	exit 1
fi
echo "cluster: passed"
