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
# Environment: OFC_KEEP=1 keeps the namespaces and the work directory for inspection;
#              OFC_SCENARIOS="kill_replica cutoff" runs only those scenarios (after the set-up).
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
# A time limit's TERM (or ^C) ends the run through the same cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT

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

[store]
url = "$STORE_URL"

[web]
listen = ":8079"
TOML
}
start_replica() { # replica
	start_bg "$1" "$1" "$WORK/bin/fingerd" -config "$WORK/$1.toml"
	wait_replica "$1"
}
# wait_replica REPLICA: wait until the replica serves. Its ports accept connections as soon as
# they are bound, before it has read the store; /healthz answers 200 once it serves.
wait_replica() {
	local i code
	for i in $(seq 1 200); do
		code=$(in_host c2 curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$(ip_of "$1"):9179/healthz")
		if [ "$code" = 200 ]; then
			wait_port "$1" 79 5 && wait_port "$1" 8079 5
			return
		fi
		sleep 0.1
	done
	say "$1 does not answer 200 on /healthz"
	return 1
}
# admin HOST ARGS...: a fingerd administration command on a replica host.
admin() {
	local h=$1; shift
	in_host "$h" "$WORK/bin/fingerd" "$@"
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
		-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label kill-replica -max-fail-pct 0.5 >"$out" 2>&1 &
	local lp=$!
	# Pages through HAProxy's HTTP frontend meanwhile.
	load c2 http -url "http://$(ip_of lb):80/~$HOSTED_USER/plan" -src "$NET.2.1+250" -rate 100 -c 8 -duration "${DUR}s" \
		-expect "$HOSTED_TEXT" -label kill-replica-http -max-fail-pct 0.5 >"$WORK/kill-http.out" 2>&1 &
	local hp=$!
	sleep $((DUR / 3))
	local before open
	before=$(metric $victim fingerd_queries_total)
	open=$(metric $victim fingerd_connections_open)
	kill -9 "${PID[$victim]}"
	wait "${PID[$victim]}" 2>/dev/null
	say "killed $victim (it had answered $before queries)"
	sleep 2
	start_replica $victim || fail "$victim did not restart"
	wait_haproxy_up fingerd 3 10 || fail "HAProxy did not see $victim up again"
	say "restarted $victim; HAProxy sees $(haproxy_up fingerd) finger servers up"
	wait $lp || fail "kill-replica: more than 0.5% of the queries failed"
	wait $hp || fail "kill-replica: more than 0.5% of the page requests failed: $(cat "$WORK/kill-http.out")"
	cat "$out" "$WORK/kill-http.out"
	local after
	after=$(metric $victim fingerd_queries_total)
	[ "$after" -gt 0 ] || fail "the restarted $victim answered no query"
	figure "$(grep '^kill-replica: sent=' "$out") finger_conns_open_on_victim_just_before=$open restarted_replica_answered=$after"
	figure "$(grep '^kill-replica-http: sent=' "$WORK/kill-http.out")"
}

# A replica that accepts connections but does not answer (stopped with SIGSTOP: the kernel still
# completes the handshakes) fails HAProxy's finger query check and leaves the rotation; it comes
# back when it answers again.
scenario_hung() {
	say "scenario: r3 hung (SIGSTOP)"
	kill -STOP "${PID[r3]}"
	local t0 back
	t0=$(date +%s.%N)
	local i
	for i in $(seq 1 200); do
		[ "$(haproxy_up fingerd)" = 2 ] && break
		sleep 0.1
	done
	[ "$(haproxy_up fingerd)" = 2 ] || fail "HAProxy still sends finger clients to the hung r3 after 20 s"
	local out_s
	out_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
	load c1 finger -addr "$(ip_of lb):79" -src "$NET.1.1+250" -n 500 -rate 250 -c 8 \
		-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label hung -max-fail-pct 0 >"$WORK/hung.out" 2>&1 ||
		fail "queries failed with r3 out of rotation: $(cat "$WORK/hung.out")"
	kill -CONT "${PID[r3]}"
	t0=$(date +%s.%N)
	wait_haproxy_up fingerd 3 20 || fail "HAProxy did not take r3 back"
	back=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
	figure "hung-replica: out_of_rotation_after_s=$out_s back_after_s=$back $(grep '^hung: sent=' "$WORK/hung.out" | sed 's/^hung: //')"
}

# fingerd's per-client limits apply to the real client address behind HAProxy: one address
# over its rate is refused while another address is still answered, and the replica logs the
# client's own address.
scenario_real_client() {
	say "scenario: per-client rate limit behind HAProxy"
	local flood=$NET.2.77 other=$NET.2.78 out="$WORK/limit.out"
	load c2 finger -addr "$(ip_of lb):79" -src "$flood" -n 60 -c 1 \
		-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label flood >"$out" 2>&1
	grep -q 'rate-limited:' "$out" || fail "one address sending 60 queries at once was never rate-limited: $(cat "$out")"
	load c2 finger -addr "$(ip_of lb):79" -src "$other" -n 5 -c 1 \
		-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label other -max-fail-pct 0 >>"$out" 2>&1 ||
		fail "another address was refused while the first was limited: $(cat "$out")"
	grep -qh "msg=\"finger query\".* remote=$flood:" "$WORK"/r?.log ||
		fail "no replica logged a finger query from the client's own address $flood"
	figure "per-client-limit: $(grep '^flood: sent=' "$out" | sed 's/^flood: //')"
}


# pg_queries: statements the fingerd role has run, from pg_stat_statements.
pg_queries() {
	psql_admin fingerd -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'fingerd'"
}

# Replicas that start together on an empty database each migrate it; each migration is applied
# once. `fingerd store migrate` afterwards finds nothing to do.
scenario_migrate() {
	say "scenario: three replicas start together on an empty database"
	local r
	for r in "${REPLICAS[@]}"; do
		start_bg "$r" "$r" "$WORK/bin/fingerd" -config "$WORK/$r.toml"
	done
	for r in "${REPLICAS[@]}"; do
		wait_replica "$r" || die "replica $r did not start: $(tail -5 "$WORK/$r.log")"
	done
	local rows distinct
	rows=$(psql_admin fingerd -c "SELECT count(*) || ' ' || count(DISTINCT version) FROM schema_migrations")
	admin r1 store migrate -config "$WORK/r1.toml" >"$WORK/migrate.out" 2>&1 || fail "fingerd store migrate: $(cat "$WORK/migrate.out")"
	local after
	after=$(psql_admin fingerd -c "SELECT count(*) || ' ' || count(DISTINCT version) FROM schema_migrations")
	read -r rows distinct <<<"$rows"
	[ "$rows" -ge 1 ] && [ "$rows" = "$distinct" ] && [ "$after" = "$rows $distinct" ] ||
		fail "schema_migrations after three concurrent starts: $rows rows, $distinct versions; after store migrate: $after"
	figure "migrate: replicas=3 migrations_recorded=$rows distinct=$distinct"
}

# Hosted users for the load: NUSERS users with a plan each; the tokens go to $WORK/users.
NUSERS=100
make_users() {
	say "adding $NUSERS hosted users"
	: >"$WORK/users"
	local i name token
	for i in $(seq 1 $NUSERS); do
		name=$(printf 'load%03d' "$i")
		token=$(admin r1 user add -config "$WORK/r1.toml" -listed "$name" 2>>"$WORK/useradd.log") ||
			die "fingerd user add $name: $(tail -3 "$WORK/useradd.log")"
		echo "$name $token" >>"$WORK/users"
	done
	# Everyone gets a first plan, published through HAProxy.
	load c2 publish -url "http://$(ip_of lb):80" -users "$WORK/users" -src "$NET.2.1+250" \
		-duration 60s -rate 200 -c 4 -once -label first-plans >"$WORK/first.out" 2>&1 ||
		die "first publishes failed: $(cat "$WORK/first.out")"
	HOSTED_USER=load001
	HOSTED_TEXT="of load001"
}

# PostgreSQL stops for 10 s while finger and publishing load run through HAProxy. Finger
# answers about hosted users keep coming from what the replicas hold; publishing is answered
# 503 with a reason; everything recovers without a restart, and no publish answered 204 is lost.
scenario_pg_down() {
	say "scenario: PostgreSQL stopped for 10 s under load"
	local d=$((10 + 2 * (DUR / 3 > 5 ? DUR / 3 : 5)))
	load c1 finger -addr "$(ip_of lb):79" -src "$NET.1.1+250" -rate 400 -c 16 -duration "${d}s" \
		-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label pg-down-finger -max-fail-pct 0 >"$WORK/pgdown-finger.out" 2>&1 &
	local fl=$!
	load c2 publish -url "http://$(ip_of lb):80" -users "$WORK/users" -src "$NET.2.1+250" \
		-duration "${d}s" -rate 50 -c 4 -state "$WORK/pgdown.state" -label pg-down-publish >"$WORK/pgdown-publish.out" 2>&1 &
	local pl=$!
	sleep $(((d - 10) / 2))
	pg_stop || fail "pg_ctl stop failed"
	local stopped_at=$SECONDS
	say "PostgreSQL stopped"
	sleep 9
	local r age up stale=""
	for r in "${REPLICAS[@]}"; do
		age=$(metric_value "$r" fingerd_store_sync_age_seconds)
		up=$(metric_value "$r" fingerd_store_up)
		stale="$stale ${r}_sync_age_s=$age ${r}_store_up=$up"
		[ "$up" = 0 ] || fail "$r reports fingerd_store_up $up with PostgreSQL stopped"
	done
	in_host c2 curl -s --max-time 5 "http://$(ip_of r1):9179/healthz" >"$WORK/pgdown-healthz.out"
	grep -q "store: unavailable" "$WORK/pgdown-healthz.out" || fail "r1's /healthz does not say the store is unavailable: $(cat "$WORK/pgdown-healthz.out")"
	sleep $((10 - (SECONDS - stopped_at) > 0 ? 10 - (SECONDS - stopped_at) : 0))
	pg_start || fail "PostgreSQL did not start again"
	local down_s=$((SECONDS - stopped_at))
	say "PostgreSQL started again after ${down_s}s"
	# Recovery without restarting anything: every replica refreshes again.
	local t0=$SECONDS ok=0 back
	back=$(date +%s.%N)
	while [ $((SECONDS - t0)) -lt 30 ]; do
		ok=1
		for r in "${REPLICAS[@]}"; do
			[ "$(metric_value "$r" fingerd_store_up)" = 1 ] || ok=0
		done
		[ $ok = 1 ] && break
		sleep 0.1
	done
	[ $ok = 1 ] || fail "not every replica reports the store up 30 s after PostgreSQL returned"
	local recovered
	recovered=$(awk -v a="$back" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
	wait $fl || fail "finger answers failed while PostgreSQL was stopped"
	wait $pl || fail "publishing load: $(cat "$WORK/pgdown-publish.out")"
	cat "$WORK/pgdown-finger.out" "$WORK/pgdown-publish.out"
	grep -q '^pg-down-publish: .*503' "$WORK/pgdown-publish.out" || fail "no publish was answered 503 while PostgreSQL was stopped"
	psql_admin fingerd -c "SELECT name || ' ' || body FROM texts WHERE kind = 'plan'" >"$WORK/stored"
	load c2 verify -state "$WORK/pgdown.state" -stored "$WORK/stored" -label pg-down-verify >"$WORK/pgdown-verify.out" 2>&1 ||
		fail "acknowledged publishes lost: $(cat "$WORK/pgdown-verify.out")"
	cat "$WORK/pgdown-verify.out"
	# Publishing works again through every replica (after the check: these plans replace
	# the ones checked).
	load c2 publish -url "http://$(ip_of lb):80" -users "$WORK/users" -src "$NET.2.1+250" \
		-duration 60s -rate 100 -c 4 -once -label after-pg-down >"$WORK/after.out" 2>&1 ||
		fail "publishing after PostgreSQL returned: $(cat "$WORK/after.out")"
	figure "$(grep '^pg-down-finger: sent=' "$WORK/pgdown-finger.out")"
	figure "$(grep '^pg-down-publish: statuses=' "$WORK/pgdown-publish.out")"
	figure "pg-down: stopped_s=$down_s$stale recovered_within_s=$recovered $(grep '^pg-down-verify:' "$WORK/pgdown-verify.out" | sed 's/^pg-down-verify: //')"
}

# metric_value replica NAME: the value of an unlabelled metric on a replica.
metric_value() {
	in_host c2 curl -s --max-time 5 "http://$(ip_of "$1"):9179/metrics" |
		awk -v m="$2" '$1 == m {v = $2} END {if (v == "") print "none"; else if (v ~ /e/) printf "%.1f\n", v; else if (v ~ /\./) printf "%.1f\n", v; else print v}'
}

# One replica loses its link to PostgreSQL only (a blackhole route in its own namespace): it
# keeps answering from what it holds, says so in its metrics, and catches up when the link
# returns.
scenario_cutoff() {
	say "scenario: r3 cut off from PostgreSQL"
	local marker name=load002 token
	token=$(awk -v n=$name '$1 == n {print $2}' "$WORK/users")
	in_host r3 ip route add blackhole "$(ip_of pg)/32"
	local t0=$SECONDS
	while [ "$(metric_value r3 fingerd_store_up)" != 0 ] && [ $((SECONDS - t0)) -lt 30 ]; do sleep 0.2; done
	local noticed=$((SECONDS - t0))
	[ "$(metric_value r3 fingerd_store_up)" = 0 ] || fail "r3 does not report the store down 30 s after being cut off"
	# "none": the metrics page did not answer within curl's 5 s (a busy machine): ask again.
	local r1_up
	for _ in 1 2 3; do
		r1_up=$(metric_value r1 fingerd_store_up)
		[ "$r1_up" != none ] && break
	done
	[ "$r1_up" = 1 ] || fail "r1 reports fingerd_store_up $r1_up though only r3 was cut off"
	marker="cutoff $RANDOM$RANDOM"
	in_host c2 curl -s -o /dev/null -w '%{http_code}' -u "$name:$token" -T - "http://$(ip_of r1):8079/~$name/plan" <<<"seq 999999 of $name $marker" >"$WORK/cutoff-put.out"
	[ "$(cat "$WORK/cutoff-put.out")" = 204 ] || fail "publishing on r1 while r3 is cut off: $(cat "$WORK/cutoff-put.out")"
	load c1 finger -addr "$(ip_of r3):79" -src "$NET.1.1+250" -n 200 -rate 100 -c 4 \
		-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label cutoff-r3-finger -max-fail-pct 0 >"$WORK/cutoff-finger.out" 2>&1 ||
		fail "r3 stopped answering when cut off: $(cat "$WORK/cutoff-finger.out")"
	local age
	age=$(metric_value r3 fingerd_store_sync_age_seconds)
	in_host r3 ip route del blackhole "$(ip_of pg)/32"
	t0=$SECONDS
	local seen=0
	while [ $((SECONDS - t0)) -lt 60 ]; do
		if [[ "$(in_host c1 curl -s --max-time 5 "http://$(ip_of r3):8079/~$name/plan")" == *"$marker"* ]]; then seen=1; break; fi
		sleep 0.1
	done
	[ $seen = 1 ] || fail "r3 did not catch up within 60 s of its link returning"
	figure "cutoff: r3_noticed_within_s=$noticed r3_sync_age_s=$age r1_store_up=1 $(grep '^cutoff-r3-finger: sent=' "$WORK/cutoff-finger.out" | sed 's/^cutoff-r3-finger: /r3_/') caught_up_within_s=$((SECONDS - t0))"
}

# Publish on r1, read on r2 and r3 over finger and HTTP: the time from the 204 to the text in
# every answer.
scenario_visibility() {
	say "scenario: publish on r1, read on r2 and r3 ($NPUB publishes)"
	local name=load003 token
	token=$(awk -v n=$name '$1 == n {print $2}' "$WORK/users")
	load c1 visibility -publish "http://$(ip_of r1):8079" -user $name -token "$token" -n "$NPUB" -src "$NET.1.1+250" \
		-finger "$(ip_of r2):79,$(ip_of r3):79" -http "http://$(ip_of r2):8079,http://$(ip_of r3):8079" \
		>"$WORK/visibility.out" 2>&1 || fail "visibility: $(tail -3 "$WORK/visibility.out")"
	cat "$WORK/visibility.out"
	figure "$(grep '^visibility: publishes=' "$WORK/visibility.out")"
}

# Capacity: the CPU a replica spends per finger answer with 1, 2 and 3 replicas behind HAProxy
# (it must not grow with the cluster), and the statements PostgreSQL runs per answer and per
# publish.
scenario_capacity() {
	say "scenario: capacity"
	# The load grows with the cluster, 200 queries per second per replica in rotation, so that each
	# replica sees the same rate: what grows with the cluster shows as a growing CPU per answer.
	local n rate k r pids
	for k in 1 2 3; do
		rate=$((200 * k))
		n=$((DUR * rate))
		pids=""
		for r in fingerd1 fingerd2 fingerd3; do
			if [ "${r#fingerd}" -le $k ]; then hap_cmd "enable server fingerd/$r"; else hap_cmd "disable server fingerd/$r"; fi
		done
		for r in $(seq 1 $k); do pids="$pids,${PID[r$r]}"; done
		sleep 1
		# HAProxy's share, measured alongside.
		load c2 cpu -pids "${PID[lb]}" -duration "$((n / rate))s" -label haproxy >"$WORK/hap$k.out" 2>&1 &
		local hp=$!
		load c1 finger -addr "$(ip_of lb):79" -src "$NET.1.1+250" -n $n -rate $rate -c 16 -cpu-pids "${pids#,}" \
			-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label "capacity-$k-replicas" -max-fail-pct 0 >"$WORK/cap$k.out" 2>&1 ||
			fail "capacity with $k replicas: $(cat "$WORK/cap$k.out")"
		# The same time without load: what the replicas spend whatever the requests.
		load c1 cpu -pids "${pids#,}" -duration "$((n / rate))s" -label idle >"$WORK/idle$k.out" 2>&1
		local busy idle answers
		busy=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' "$WORK/cap$k.out")
		idle=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' "$WORK/idle$k.out")
		answers=$(sed -n 's/^capacity-[0-9]-replicas: sent=[0-9]* ok=\([0-9]*\).*/\1/p' "$WORK/cap$k.out")
		wait $hp
		figure "$(grep "^capacity-$k-replicas: sent=" "$WORK/cap$k.out") idle_cpu_s=$idle cpu_us_per_answer_above_idle=$(awk -v b="$busy" -v i="$idle" -v a="$answers" 'BEGIN {printf "%.1f", (b - i) * 1e6 / a}') haproxy_cpu_us_per_answer=$(awk -v h="$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' "$WORK/hap$k.out")" -v a="$answers" 'BEGIN {printf "%.1f", h * 1e6 / a}')"
	done
	for r in fingerd1 fingerd2 fingerd3; do hap_cmd "enable server fingerd/$r"; done
	# Nothing a replica does per request may grow with the cluster. The bound is loose: the
	# machine is shared and the figures are small.
	local one three
	one=$(printf '%s\n' "${FIGURES[@]}" | sed -n 's/^capacity-1-replicas: .*cpu_us_per_answer_above_idle=\([0-9.]*\).*/\1/p')
	three=$(printf '%s\n' "${FIGURES[@]}" | sed -n 's/^capacity-3-replicas: .*cpu_us_per_answer_above_idle=\([0-9.]*\).*/\1/p')
	awk -v a="$one" -v b="$three" 'BEGIN {exit !(a > 0 && b <= 2 * a)}' ||
		fail "CPU per answer grew from $one us with one replica to $three us with three"
	# Statements per answer: a load window against an idle window of the same length.
	local q0 q1 q2 secs=$((DUR / 2 > 5 ? DUR / 2 : 5))
	q0=$(pg_queries)
	sleep $secs
	q1=$(pg_queries)
	load c1 finger -addr "$(ip_of lb):79" -src "$NET.1.1+250" -duration "${secs}s" -rate $rate -c 16 \
		-query "$HOSTED_USER" -expect "$HOSTED_TEXT" -label pg-per-answer -max-fail-pct 0 >"$WORK/pgq.out" 2>&1 ||
		fail "statements per answer: $(cat "$WORK/pgq.out")"
	q2=$(pg_queries)
	local answers
	answers=$(sed -n 's/^pg-per-answer: sent=[0-9]* ok=\([0-9]*\).*/\1/p' "$WORK/pgq.out")
	local idle=$((q1 - q0)) busy=$((q2 - q1))
	figure "pg-statements: idle_${secs}s=$idle under_load_${secs}s=$busy answers=$answers per_answer=$(awk -v b=$busy -v i=$idle -v a="$answers" 'BEGIN {printf "%.4f", (b - i) / a}') background_per_replica_per_s=$(awk -v i=$idle -v s=$secs 'BEGIN {printf "%.1f", i / s / 3}')"
	# Statements per publish, and which.
	psql_admin fingerd -c "SELECT pg_stat_statements_reset()" >/dev/null
	q0=$(pg_queries)
	load c2 publish -url "http://$(ip_of lb):80" -users "$WORK/users" -src "$NET.2.1+250" \
		-duration "${secs}s" -rate 20 -c 2 -label pg-per-publish >"$WORK/pgp.out" 2>&1 || fail "publishes: $(cat "$WORK/pgp.out")"
	q1=$(pg_queries)
	local pubs
	pubs=$(sed -n 's/.*statuses=.*204:\([0-9]*\).*/\1/p' "$WORK/pgp.out")
	say "statements run by fingerd while publishing (calls, statement):"
	psql_admin fingerd -c "SELECT calls || '  ' || regexp_replace(query, '\s+', ' ', 'g') FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'fingerd' ORDER BY calls DESC" | cut -c1-150 >&2
	figure "pg-statements-per-publish: publishes=$pubs statements=$((q1 - q0)) idle_same_time=$idle per_publish=$(awk -v b=$((q1 - q0)) -v i=$idle -v p="$pubs" 'BEGIN {printf "%.1f", (b - i) / p}')"
}
hap_cmd() { echo "$1" | in_host lb socat - "UNIX-CONNECT:$WORK/haproxy.sock" >/dev/null; }

# ------------------------------------------------------------------ main
say "building"
mkdir -p "$WORK/bin"
(cd "$REPO" && go build -o "$WORK/bin/fingerd" ./cmd/fingerd &&
	go build -o "$WORK/bin/clusterload" ./test/cluster/clusterload) || die "go build failed"
chmod -R a+rX "$WORK/bin"
make_hosts
say "starting PostgreSQL on $(ip_of pg)"
start_pg
for r in "${REPLICAS[@]}"; do write_replica_config "$r"; done
scenario_migrate
say "starting HAProxy on $(ip_of lb)"
start_haproxy || die "HAProxy did not start: $(tail -5 "$WORK/lb.log")"
wait_haproxy_up fingerd 3 10 || die "HAProxy does not see the three replicas up: $(tail -5 "$WORK/lb.log")"
wait_haproxy_up fingerd_web 3 10 || die "HAProxy does not see the three replicas' HTTP up: $(tail -5 "$WORK/lb.log")"
make_users

for s in ${OFC_SCENARIOS:-real_client kill_replica hung visibility cutoff pg_down capacity}; do
	"scenario_$s"
done

echo
echo "cluster figures:"
for f in "${FIGURES[@]}"; do echo "  $f"; done
if [ $FAILED != 0 ]; then
	echo "cluster: FAILED"
	exit 1
fi
echo "cluster: passed"
