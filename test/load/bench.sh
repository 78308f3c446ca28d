#!/usr/bin/env bash
# Benchmarks fingerd against the machine's ceiling (a fixed-reply Go server sending the same
# bytes) and Debian's finger daemons (netkit in.fingerd, cfingerd, efingerd, each under socat as
# inetd), all on loopback, in one run, and prints the ratios. Then measures what 10,000 idle
# connections cost fingerd and whether fast clients keep their rate meanwhile, and whether they
# keep it under many-address floods of idle connections against fingerd's defaults (-flood: that
# part only).
#
# Usage: test/load/bench.sh [-d SECONDS] [-idle N] [-no-peers] [-flood]   (root: test account, ports)
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The peers run as nobody from the cache: it lives outside the clone (which may be under a
# private /root), in a directory every user can search.
CACHE=${FINGER_INTEROP_CACHE:-/var/cache/openfinger/interop}
WORK=$(mktemp -d /tmp/finger-bench.XXXXXX); chmod 0755 "$WORK"
DUR=10 IDLE=10000 PEERS=1 FLOOD_ONLY=0
ARGS=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    -d) DUR=$2; shift ;;
    -idle) IDLE=$2; shift ;;
    -no-peers) PEERS=0 ;;
    -flood) FLOOD_ONLY=1 PEERS=0 ;;
    *) echo "usage: $0 [-d SECONDS] [-idle N] [-no-peers] [-flood]" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "bench: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (test account, dropping privileges)"
. "$REPO/test/lib/peers.bash"
# Building and installing the peers need the package archives; then everything runs in a network
# namespace of its own with only a loopback interface: the peers look up client addresses and
# ident, and none of that may leave this machine.
if [ -z "${FINGER_BENCH_NS:-}" ]; then
  (cd "$REPO" && go build -o "$WORK/fingerd" ./cmd/fingerd && go build -o "$WORK/fingerload" ./test/load/fingerload &&
    go build -o "$WORK/fixedserver" ./test/load/fixedserver && go build -o "$WORK/floodsink" ./test/load/floodsink) ||
    die "go build failed"
  [ $PEERS = 1 ] && install_peers
  ns=ofibench$$
  ip netns add $ns || die "ip netns add failed"
  ip -n $ns link set lo up
  FINGER_BENCH_NS=$ns FINGER_BENCH_WORK=$WORK ip netns exec $ns bash "${BASH_SOURCE[0]}" "${ARGS[@]}"; rc=$?
  ip netns del $ns
  rm -rf "$WORK"
  exit $rc
fi
rmdir "$WORK"; WORK=$FINGER_BENCH_WORK
PIDS=()
cleanup() {
  local p u d
  for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for u in "${CREATED_USERS[@]}"; do userdel -r "$u" >/dev/null 2>&1; done
  for d in "${CREATED_DIRS[@]}"; do rmdir "$d" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# A time limit's TERM (or ^C) ends the run through the same cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT
start_bg() { setsid "$@" >>"$WORK/$(basename "$1").log" 2>&1 & PIDS+=($!); }
wait_port() {
  local i; for i in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  die "nothing listens on 127.0.0.1:$1"
}

if [ $PEERS = 1 ]; then
  prepare_peer_etc
  # cfingerd refuses remote clients without an RFC 1413 ident server ("Your site has been
  # rejected"); the load comes from 127.0.1.x, remote to it. The one change the measurement
  # forces: let it answer them (ALLOW_NONIDENT_ACCESS), so that it is measured answering.
  sed -i 's/-ALLOW_NONIDENT_ACCESS/+ALLOW_NONIDENT_ACCESS/' "$WORK/cfingerd-etc/cfingerd.conf"
  grep -q '+ALLOW_NONIDENT_ACCESS' "$WORK/cfingerd-etc/cfingerd.conf" || die "cannot allow cfingerd's non-ident access"
fi
U=ofibench_user
mkuser $U "Bench User,Room 1,5551234,"
wfile $U .plan 0644 "$(head -c 1024 /dev/zero | tr '\0' 'p' | fold -w 64)\n"
ulimit -n "$(ulimit -Hn)"

# fingerd is measured in its DEFAULT configuration except what each measurement forces, said
# where it is set; its log is at the default level too (a record per answered query, written to
# a file here as a user's would go to the journal). Everywhere: rate = 0, since the fast clients send far more than the default 5
# queries a second per address from their 63 addresses (spreading them over enough addresses
# would take thousands). The ratios and the many-address flood run against this one.
cat >"$WORK/fingerd-default.toml" <<TOML
[server]
listen = ["127.0.0.1:7976", "[::1]:7976"]
user = "nobody"
rate = 0.0
TOML
start_bg "$WORK/fingerd" -config "$WORK/fingerd-default.toml"; DEFAULT_PID=${PIDS[-1]}
wait_port 7976
# Every run checks what each reply says: a reply without the user's login and the first line of
# the .plan (an empty one, an error line) counts as an error, so a server that answers nothing is
# reported as failing, never as fast.
EXPECT="(?s)$U.*$(head -c 64 /dev/zero | tr '\0' 'p')"
# first_answer PORT: one query (-n 1 ends the run after it; -d only bounds it). The output is
# captured, then searched: piped into grep -q, which exits at the first line it matches,
# fingerload died of SIGPIPE writing its next line, and under pipefail the check failed although
# the answer was right (on a busy machine, 15 of 200 tries).
first_answer() {
  local out
  out=$("$WORK/fingerload" -addr "127.0.0.1:$1" -query $U -expect "$EXPECT" -c 1 -d 30s -n 1)
  grep -q '^requests: 1 ok, 0 errors' <<<"$out" ||
    die "fingerd on port $1 does not answer for $U as expected: $out $(tail -5 "$WORK/fingerd.log")"
}
first_answer 7976
exec 3<>/dev/tcp/127.0.0.1/7976; printf '%s\r\n' $U >&3; cat <&3 >"$WORK/reply.bin"; exec 3<&-
SIZE=$(stat -c %s "$WORK/reply.bin")
FAILING=()
if [ $FLOOD_ONLY = 0 ]; then
start_bg "$WORK/fixedserver" -listen 127.0.0.1:7972 -reply-file "$WORK/reply.bin"
wait_port 7972
TARGETS=("ceiling=7972" "fingerd=7976")
if [ $PEERS = 1 ]; then
  for p in netkit=7973 cfingerd=7974 efingerd=7975; do
    peer_argv "${p%=*}" "TCP-LISTEN:${p#*=},bind=127.0.0.1,reuseaddr,fork,backlog=1024"
    start_bg "${ARGV[@]}"; wait_port "${p#*=}"; TARGETS+=("$p")
  done
fi

echo "# {U} answer for $U ($SIZE bytes from fingerd), ${DUR}s per run, $(nproc) cores, $(date -u +%F)"
printf '%-10s %5s %10s %10s %10s %8s %s\n' target c req/s p50 p99 errors ratio
for c in 8 64; do
  ceiling=
  for t in "${TARGETS[@]}"; do
    out=$("$WORK/fingerload" -addr "127.0.0.1:${t#*=}" -query $U -expect "$EXPECT" -c $c -d "${DUR}s" -from 127.0.1.0/26)
    rate=$(awk '/^rate:/{print $2}' <<<"$out")
    p50=$(awk '/^latency:/{print $3}' <<<"$out"); p99=$(awk '/^latency:/{print $5}' <<<"$out")
    errs=$(awk '/^requests:/{print $4}' <<<"$out")
    [ -z "$ceiling" ] && ceiling=$rate
    verdict=
    if [ "${errs:-1}" != 0 ]; then
      verdict=FAILING; FAILING+=("${t%=*} (c=$c): $(grep '^error ' <<<"$out" | head -1)")
    fi
    printf '%-10s %5s %10s %10s %10s %8s %s %s\n' "${t%=*}" $c "$rate" "$p50" "$p99" "$errs" \
      "$(awk -v a="$rate" -v b="$ceiling" 'BEGIN{printf "%.2f", (b>0? a/b : 0)}')" "$verdict"
  done
done

# The idle measurement forces more: $IDLE connections from the one address 127.0.0.2 (past the
# per-address cap of 16 and, at 10,000, the total cap, where the oldest idle ones would be
# evicted), held for the fast run and 10 s more (past the default read_timeout of 10 s, and for
# runs over 20 s past the default conn_timeout of 60 s). Everything else is the default.
cat >"$WORK/fingerd.toml" <<TOML
[server]
listen = ["127.0.0.1:7971"]
user = "nobody"
rate = 0.0
max_conns_per_ip = $(( IDLE > 16 ? IDLE : 16 ))
max_conns = $(( IDLE + 100 > 10000 ? IDLE + 100 : 10000 ))
read_timeout = "$(( DUR + 40 ))s"
$( [ $(( DUR + 40 )) -gt 60 ] && echo "conn_timeout = \"$(( DUR + 40 ))s\"" )
[metrics]
listen = "127.0.0.1:7978"
TOML
start_bg "$WORK/fingerd" -config "$WORK/fingerd.toml"; FINGERD_PID=${PIDS[-1]}
wait_port 7971
first_answer 7971

echo
echo "# $IDLE idle connections from 127.0.0.2 while 8 fast clients query from 127.0.1.0/26"
rss() { awk '/^VmRSS:/{print $2}' "/proc/$FINGERD_PID/status"; }
# goheap: live heap and goroutine stacks in KiB, as the Go runtime counts them (metrics endpoint).
goheap() {
  (exec 3<>/dev/tcp/127.0.0.1/7978 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
    awk '/^go_memstats_(heap_inuse|stack_inuse)_bytes /{s+=$2} END{printf "%d", s/1024}' <&3)
}
"$WORK/fingerload" -addr 127.0.0.1:7971 -query $U -expect "$EXPECT" -c 8 -d "${DUR}s" -from 127.0.1.0/26 >"$WORK/base.out"
base=$(awk '/^rate:/{print $2}' "$WORK/base.out")
grep -q '^requests: .* 0 errors' "$WORK/base.out" || FAILING+=("fingerd alone before the idle run: $(grep '^error ' "$WORK/base.out" | head -1)")
sleep 1; rss0=$(rss); heap0=$(goheap)
# The idle clients: one query-less connection each, held open past the fast run.
"$WORK/fingerload" -addr 127.0.0.1:7971 -c 0 -d "$(( DUR + 10 ))s" -idle "$IDLE" -idle-from 127.0.0.2 >"$WORK/idle.out" &
idlep=$!
for i in $(seq 1 100); do
  [ "$(ss -Htn state established "( sport = :7971 )" | wc -l)" -ge "$IDLE" ] && break; sleep 0.1
done
"$WORK/fingerload" -addr 127.0.0.1:7971 -query $U -expect "$EXPECT" -c 8 -d "${DUR}s" -from 127.0.1.0/26 >"$WORK/fast.out"
grep -q '^requests: .* 0 errors' "$WORK/fast.out" || FAILING+=("fingerd with $IDLE idle connections: $(grep '^error ' "$WORK/fast.out" | head -1)")
sleep 2; rss1=$(rss); heap1=$(goheap)
open=$(ss -Htn state established "( sport = :7971 )" | wc -l)
wait $idlep
cat "$WORK/fast.out"
with=$(awk '/^rate:/{print $2}' "$WORK/fast.out")
echo "idle connections open at the end of the fast run: $open"
echo "fast-client rate: alone $base req/s, with $IDLE idle $with req/s, ratio $(awk -v a="$with" -v b="$base" 'BEGIN{printf "%.2f", a/b}')"
echo "fingerd Go heap+stacks in use: $heap0 KiB before, $heap1 KiB with the idle connections: $(awk -v a="$heap0" -v b="$heap1" -v n="$IDLE" 'BEGIN{printf "%.2f", (b-a)/n}') KiB per idle connection"
echo "fingerd RSS: $rss0 KiB before, $rss1 KiB with the idle connections: $(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE" 'BEGIN{printf "%.2f", (b-a)/n}') KiB per idle connection"
fi

# The many-address flood: the default fingerd (rate limit off, above), facing idle connections
# from many addresses, each under the per-address cap, held and reopened as the daemon closes
# them (each address opening at most 1.6 a second), while the fast clients query from
# 127.0.1.0/26. 20,000 connections take two fingerload processes (10,000 each): a process may
# hold no more descriptors than the hard limit. The flood runs at nice 19: here it shares the
# server's cores (and the loopback's TCP work), which on a network it would not.
# The IPv6 clients: one address in each of 500 /64s of fd00:79::/48, which this namespace's
# loopback owns.
ip -6 route add local fd00:79::/48 dev lo
echo 1 >/proc/sys/net/ipv6/ip_nonlocal_bind
echo
echo "# many-address flood against fingerd's defaults (rate limit off), 8 fast clients from 127.0.1.0/26, ${DUR}s runs"
echo "(load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-24s %7s %7s %6s %7s %9s %7s %8s %8s %8s %8s %8s %8s %6s\n' flood alone with ratio errors p99-alone p99 opened evicted refused rss-KiB us/conn gen-us cores
# cpu: the flooded server's user+system CPU time so far, in clock ticks: fingerd's, or the one
# FLOODED_PID names for a flood() call.
FLOODED_PID=$DEFAULT_PID
cpu() { awk '{print $14+$15}' "/proc/$FLOODED_PID/stat"; }
# gencpu PID...: the flood generators' CPU time so far, in clock ticks.
gencpu() { local p; for p in "$@"; do cat "/proc/$p/stat"; done | awk '{s += $14 + $15} END {print s + 0}'; }
# per_conn TICKS N: microseconds of CPU time per connection for N connections ("-" for none).
per_conn() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN{if (n>0) printf "%.0f", t/hz*1e6/n; else print "-"}'; }
# fast RUN OUT: the fast clients' run against fingerd, its output in $WORK/OUT; a run with
# errors joins FAILING, named RUN.
fast() {
  "$WORK/fingerload" -addr 127.0.0.1:7976 -query $U -expect "$EXPECT" -c 8 -d "${DUR}s" -from 127.0.1.0/26 >"$WORK/$2"
  grep -q '^requests: .* 0 errors' "$WORK/$2" || FAILING+=("fingerd $1: $(grep '^error ' "$WORK/$2" | head -1)")
}
rate_of() { awk '/^rate:/{print $2}' "$WORK/$1"; }
# Each flood is compared in the order A B B A: the fast clients alone, twice under the flood,
# alone again once the flood's connections have timed out; the ratio is of the sums, so that
# what drifts over the row (the sockets left in TIME_WAIT, the machine's other work) weighs on
# both sides alike.
flood() { # name, then one argument list per fingerload flood process
  local name=$1 a alone with fl=() f i c0 c1 g0 g1
  shift
  fast "before the flood $name" falone.out
  i=0
  for a in "$@"; do
    # shellcheck disable=SC2086
    nice -n 19 "$WORK/fingerload" -addr "${a%% *}" -c 0 -d "$(( 2 * DUR + 30 ))s" ${a#* } >"$WORK/flood$i.out" 2>&1 &
    fl+=($!); i=$((i+1))
  done
  for f in $(seq 0 $((i-1))); do
    for _ in $(seq 1 300); do grep -q '^hold: [0-9]* connections open' "$WORK/flood$f.out" && break; sleep 0.1; done
  done
  # fingerd's CPU time per flood connection, over 5 s of the flood alone:
  # each fingerload prints the connections it has opened so far at SIGUSR1.
  c0=$(cpu); g0=$(gencpu "${fl[@]}"); for f in "${fl[@]}"; do kill -USR1 "$f"; done
  sleep 5
  c1=$(cpu); g1=$(gencpu "${fl[@]}"); for f in "${fl[@]}"; do kill -USR1 "$f"; done
  fast "under the flood $name" fwith.out
  fast "under the flood $name" fwith2.out
  local rss; rss=$(awk '/^VmRSS:/{print $2}' "/proc/$FLOODED_PID/status")
  for f in "${fl[@]}"; do kill -TERM "$f" 2>/dev/null; done
  wait "${fl[@]}" 2>/dev/null
  sleep 12 # the flood's last connections time out (read_timeout 10s)
  fast "after the flood $name" falone2.out
  alone=$(awk -v a="$(rate_of falone.out)" -v b="$(rate_of falone2.out)" 'BEGIN{printf "%.0f", (a + b) / 2}')
  with=$(awk -v a="$(rate_of fwith.out)" -v b="$(rate_of fwith2.out)" 'BEGIN{printf "%.0f", (a + b) / 2}')
  local opened evicted refused errs
  opened=$(cat "$WORK"/flood*.out | awk '/^hold: .* opened in all/{s+=$7} END{print s+0}')
  evicted=$(cat "$WORK"/flood*.out | awk '/^hold: .* opened in all/{s+=$11} END{print s+0}')
  refused=$(cat "$WORK"/flood*.out | awk '/^hold: .* opened in all/{s+=$15} END{print s+0}')
  errs=$(cat "$WORK/fwith.out" "$WORK/fwith2.out" | awk '/^requests:/{s+=$4} END{print s+0}')
  local us n=0 f
  for f in "$WORK"/flood*.out; do
    n=$(( n + $(awk '/^hold-opened:/{v[k++]=$2} END{print (k>=2? v[1]-v[0] : 0)}' "$f") ))
  done
  local gus cores
  us=$(per_conn $((c1 - c0)) "$n")
  gus=$(per_conn $((g1 - g0)) "$n")
  cores=$(awk -v a="$((c1 - c0 + g1 - g0))" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", a/hz/5}')
  printf '%-24s %7s %7s %6s %7s %9s %7s %8s %8s %8s %8s %8s %8s %6s\n' "$name" "$alone" "$with" \
    "$(awk -v a="$with" -v b="$alone" 'BEGIN{printf "%.2f", (b>0? a/b : 0)}')" "$errs" \
    "$(awk '/^latency:/{print $5}' "$WORK/falone.out")" "$(awk '/^latency:/{print $5}' "$WORK/fwith.out")" \
    "$opened" "$evicted" "$refused" "$rss" "$us" "$gus" "$cores"
  echo "  (fast clients alone $(rate_of falone.out) and $(rate_of falone2.out) req/s, under the flood $(rate_of fwith.out) and $(rate_of fwith2.out))"
  rm -f "$WORK"/flood*.out
}
flood "5000 from 765 IPv4" "127.0.0.1:7976 -hold 5000 -hold-addrs 765 -hold-from 127.2.0.0/16"
flood "20000 from 2000 IPv4" "127.0.0.1:7976 -hold 10000 -hold-addrs 1000 -hold-from 127.2.0.0/16" \
  "127.0.0.1:7976 -hold 10000 -hold-addrs 1000 -hold-from 127.3.0.0/16"
# Right after, the same 20,000 aimed at floodsink, the least a server can do per connection
# (accept, hold up to fingerd's default cap of 10,000, reset the oldest at the cap or after the
# 10 s read timeout; one thread, nothing read), while the fast clients still query fingerd: its
# ratio is what the flood's own process and the kernel's TCP work for it leave the fast clients
# on these cores, which no server could beat here.
start_bg "$WORK/floodsink" -listen 127.0.0.1:7977 -cap 10000 -timeout 10s; SINK_PID=${PIDS[-1]}
wait_port 7977
FLOODED_PID=$SINK_PID flood "20000 at floodsink" \
  "127.0.0.1:7977 -hold 10000 -hold-addrs 1000 -hold-from 127.2.0.0/16" \
  "127.0.0.1:7977 -hold 10000 -hold-addrs 1000 -hold-from 127.3.0.0/16"
kill "$SINK_PID"
flood "5000 from 500 IPv6 /64s" "[::1]:7976 -hold 5000 -hold-addrs 500 -hold-from fd00:79::/48"
echo "(alone, with: the fast clients' rate, the mean of their two runs before and after the flood,"
echo " and of their two runs under it (the order A B B A); p99: of the first run of each;"
echo " opened: connections the flood opened in all; evicted: reset by fingerd to make room;"
echo " refused: \"finger: too many connections\" (per-address or per-/48 cap); rss: fingerd's under the flood"
echo " (floodsink's in its row); us/conn: fingerd's (floodsink's) CPU time per flood connection opened,"
echo " over 5 s of the flood alone"
echo " (\"-\": none opened then: the 5,000 held from 765 addresses wait for the read timeout);"
echo " gen-us: the flood generators' CPU time per connection over the same 5 s; cores: fingerd's (floodsink's) and"
echo " the generators' CPU time over those 5 s, in cores: what the flood takes of this machine's $(nproc),"
echo " which the fast clients, on the same cores, no longer have);"
echo " load average after: $(cut -d' ' -f1-3 /proc/loadavg))"

if [ ${#FAILING[@]} -gt 0 ]; then
  echo
  echo "bench: FAILING: replies missing or wrong (see the errors column):"
  printf '  %s\n' "${FAILING[@]}"
  exit 1
fi
