#!/usr/bin/env bash
# Soak test: fingerd under full load for a while (default 30m; CI uses a short setting), with
# hostile clients mixed in (idle, over-long and invalid queries). Samples goroutines (from the
# metrics endpoint), open descriptors and resident memory every 10 s, and fails when a query of
# the fast clients failed or when goroutines, descriptors or memory keep growing.
# Usage: test/soak.sh [-d DURATION_SECONDS]         (root: test account, dropping privileges)
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/finger-soak.XXXXXX); chmod 0755 "$WORK"
DUR=1800
[ "${1:-}" = -d ] && DUR=$2
die() { echo "soak: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root"
. "$REPO/test/lib/peers.bash"
PIDS=()
cleanup() {
  local p u
  for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for u in "${CREATED_USERS[@]}"; do userdel -r "$u" >/dev/null 2>&1; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# A time limit's TERM (or ^C) ends the run through the same cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT
(cd "$REPO" && go build -o "$WORK/fingerd" ./cmd/fingerd && go build -o "$WORK/fingerload" ./test/load/fingerload) ||
  die "go build failed"
U=ofisoak_user
mkuser $U "Soak User,Room 1,,"
wfile $U .plan 0644 'soak plan\n'
cat >"$WORK/fingerd.toml" <<TOML
[server]
listen = ["127.0.0.1:7976"]
user = "nobody"
max_conns = 4096
max_conns_per_ip = 4096
rate = 0.0
read_timeout = "2s"
[metrics]
listen = "127.0.0.1:7977"
TOML
# The log, at the default level (a record per connection), goes through a FIFO to awk, which
# counts the fast clients' records and keeps the rest: a long soak writes millions of records.
mkfifo "$WORK/log.fifo"
awk -v out="$WORK/log.count" '
  /msg="finger query"/ && / remote=127\.0\.1\./ { fast++; next }
  /msg="finger query"/ { other++; next }
  { print > "/dev/stderr" }
  END { print fast + 0, other + 0 > out }' <"$WORK/log.fifo" 2>"$WORK/fingerd.log" & AWK=$!
setsid "$WORK/fingerd" -config "$WORK/fingerd.toml" >"$WORK/log.fifo" 2>&1 & PIDS+=($!); PID=$!
for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/7976) 2>/dev/null && break; sleep 0.1; done

sample() { # goroutines fds rss_kib
  local g
  g=$(exec 3<>/dev/tcp/127.0.0.1/7977 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && awk '/^go_goroutines /{print $2}' <&3)
  echo "${g:-?} $(ls "/proc/$PID/fd" | wc -l) $(awk '/^VmRSS:/{print $2}' "/proc/$PID/status")"
}

# Fast clients for the whole run; hostile ones in bursts alongside. Every fast reply must hold
# the login and the plan: an empty or wrong one counts as an error.
"$WORK/fingerload" -addr 127.0.0.1:7976 -query $U -expect "(?s)$U.*soak plan" -c 16 -d "${DUR}s" -from 127.0.1.0/26 >"$WORK/load.out" &
LOAD=$!
hostile() {
  local end=$(( $(date +%s) + DUR - 5 ))
  while [ "$(date +%s)" -lt $end ]; do
    "$WORK/fingerload" -addr 127.0.0.1:7976 -c 2 -d 3s -idle 200 -idle-from 127.0.0.2 >/dev/null 2>&1
    for q in "$(head -c 2000 /dev/zero | tr '\0' A)" $'bad\x01query' 'a@b@c@d@e@f'; do
      "$WORK/fingerload" -addr 127.0.0.1:7976 -query "$q" -c 2 -d 1s -from 127.0.0.3 >/dev/null 2>&1
    done
  done
}
hostile & HOST=$!
echo "t(s) goroutines fds rss(KiB)"
samples=()
t=0
while kill -0 $LOAD 2>/dev/null; do
  sleep 10; t=$((t+10))
  s=$(sample); samples+=("$s"); echo "$t $s"
done
wait $LOAD; wait $HOST 2>/dev/null
cat "$WORK/load.out"
sleep 3   # idle clients time out (read_timeout 2s)
final=$(sample); echo "after: $final"

errors=$(awk '/^requests:/{print $4}' "$WORK/load.out")
ok=$(awk '/^requests:/{print $2}' "$WORK/load.out")
fail=0
[ "${errors:-1}" = 0 ] || { echo "soak: $errors fast-client errors"; fail=1; }
[ "${ok:-0}" -gt 0 ] || { echo "soak: no successful query"; fail=1; }
# No log record lost: stopped, fingerd has written one record per fast client's connection, at
# least one for each answer the clients counted and at most 16 more (the clients' connections
# still open when their run ended).
kill -TERM "$PID"; wait "$PID" 2>/dev/null; wait "$AWK"
read -r logged other <"$WORK/log.count"
echo "log: $logged records of the fast clients' queries, $other of the others"
if [ "$logged" -lt "${ok:-0}" ] || [ "$logged" -gt $(( ${ok:-0} + 16 )) ]; then
  echo "soak: $logged log records for $ok answered queries"; fail=1
fi
grep -q 'msg="fingerd: stopped"' "$WORK/fingerd.log" || { echo "soak: fingerd did not log its stop"; fail=1; }
# Flat: at the end, with the load gone, goroutines and descriptors are back near the start of the
# run (a few listeners and the metrics server), and memory did not grow past twice the first sample.
read -r g0 f0 r0 <<<"${samples[0]}"
read -r g1 f1 r1 <<<"$final"
[ "$g1" != "?" ] && [ "$g1" -gt 50 ] && { echo "soak: $g1 goroutines left after the load"; fail=1; }
[ "$f1" -gt 32 ] && { echo "soak: $f1 descriptors open after the load"; fail=1; }
[ "$r1" -gt $(( r0 * 2 + 20000 )) ] && { echo "soak: RSS grew from $r0 to $r1 KiB"; fail=1; }
if [ $fail = 0 ]; then echo "soak: 1 passed, 0 failed"; else echo "soak: 0 passed, 1 failed"; fi
exit $fail
