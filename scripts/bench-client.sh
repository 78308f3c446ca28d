#!/usr/bin/env bash
# Compares what one finger query costs end to end with our client and with
# Debian's netkit finger: the same query, "finger USER@127.0.0.1[:79]", to
# the same server on 127.0.0.1:79 (netkit's client can only use port 79).
# The server is our fingerd when cmd/fingerd builds, test/load/fixedserver
# sending a typical long-format reply otherwise. Uses hyperfine when installed, a timed loop otherwise.
#
# With -base REV it also builds the client (default build) as it was at the
# git revision REV and times it against the current one, alternating the two
# run by run so that a change in the machine's load affects both alike;
# hyperfine runs one command after the other, which is too coarse to see a
# difference of a few tenths of a millisecond on a shared machine.
#
# Usage: scripts/bench-client.sh [-n RUNS] [-base REV]   (root: port 79, a test user)
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=300
BASE=
while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift ;;
    -base) BASE=$2; shift ;;
    *) echo "usage: $0 [-n RUNS] [-base REV]" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "bench-client: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (port 79, test user)"
command -v ss >/dev/null || die "ss (iproute2) is needed to check port 79"
if [ -n "$(ss -Hltn 'sport = :79')" ]; then
  die "something already listens on port 79; not touching it"
fi
NETKIT=/usr/bin/finger
if ! grep -q "usage: finger" <<<"$("$NETKIT" -h 2>&1)"; then
  apt-get install -y finger >/dev/null || die "cannot install Debian's finger"
fi

WORK=$(mktemp -d /tmp/finger-bench-client.XXXXXX); chmod 0755 "$WORK"
SERVER_PID= CREATED_USER=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ -n "$CREATED_USER" ] && userdel -r "$CREATED_USER" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_port() {
  local i; for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/79) 2>/dev/null && return 0; sleep 0.1; done
  die "nothing listens on 127.0.0.1:79"
}

# The default build links libc (cgo: NSS accounts for local answers); the
# static one (CGO_ENABLED=0) starts faster. Both are measured. A build with
# -tags osusergo,netgo is static too and starts like the CGO_ENABLED=0 one.
(cd "$REPO" && go build -o "$WORK/finger" ./cmd/finger &&
  CGO_ENABLED=0 go build -o "$WORK/finger-static" ./cmd/finger) || die "go build ./cmd/finger failed"
if [ -n "$BASE" ]; then
  mkdir "$WORK/base"
  git -C "$REPO" archive "$BASE" | tar -x -C "$WORK/base" || die "git archive $BASE failed"
  (cd "$WORK/base" && go build -o "$WORK/finger-base" ./cmd/finger) || die "go build ./cmd/finger at $BASE failed"
fi
# The floor for any Go client: the least a Go program can do for the same
# query (dial, send, copy the reply), with no filter, options or limits.
mkdir "$WORK/floor"
cat >"$WORK/floor/main.go" <<'GO'
package main

import (
	"io"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	io.WriteString(c, os.Args[2]+"\r\n")
	io.Copy(os.Stdout, c)
}
GO
printf 'module floor\ngo 1.21\n' >"$WORK/floor/go.mod"
(cd "$WORK/floor" && CGO_ENABLED=0 go build -o "$WORK/go-floor" .) || die "go build of the floor client failed"
U=ofibench_client
if ! id -u "$U" >/dev/null 2>&1; then
  useradd -m -d "/home/$U" -s /bin/bash -c "Bench Client,Room 1,5551234," "$U" || die "useradd failed"
  CREATED_USER=$U
fi
chmod 0755 "/home/$U"
head -c 1024 /dev/zero | tr '\0' 'p' | fold -w 64 >"/home/$U/.plan"
chown "$U:$U" "/home/$U/.plan"; chmod 0644 "/home/$U/.plan"

if [ -d "$REPO/cmd/fingerd" ] && (cd "$REPO" && go build -o "$WORK/server" ./cmd/fingerd 2>"$WORK/build.log"); then
  cat >"$WORK/fingerd.toml" <<TOML
[server]
listen = ["127.0.0.1:79"]
user = "nobody"
rate = 0.0
max_conns_per_ip = 512
[log]
level = "error"
TOML
  SERVER="fingerd (cmd/fingerd)"
  setsid "$WORK/server" -config "$WORK/fingerd.toml" >"$WORK/server.log" 2>&1 &
else
  (cd "$REPO" && go build -o "$WORK/server" ./test/load/fixedserver) || die "go build fixedserver failed"
  {
    printf 'Login: %-32sName: Bench Client\r\n' "$U"
    printf 'Directory: /home/%-28sShell: /bin/bash\r\n' "$U"
    printf 'Office: Room 1, 555-1234\r\nNever logged in.\r\nNo mail.\r\nPlan:\r\n'
    sed 's/$/\r/' "/home/$U/.plan"
  } >"$WORK/reply.bin"
  SERVER="test/load/fixedserver (cmd/fingerd did not build)"
  setsid "$WORK/server" -listen 127.0.0.1:79 -reply-file "$WORK/reply.bin" >"$WORK/server.log" 2>&1 &
fi
SERVER_PID=$!
wait_port

OURS=("$WORK/finger" "$U@127.0.0.1:79")
STATIC=("$WORK/finger-static" "$U@127.0.0.1:79")
FLOOR=("$WORK/go-floor" 127.0.0.1:79 "$U")
THEIRS=("$NETKIT" "$U@127.0.0.1")
"${OURS[@]}" >"$WORK/ours.out" || die "our finger failed: $(cat "$WORK/ours.out")"
"${THEIRS[@]}" >"$WORK/theirs.out" || die "netkit finger failed"
echo "# server: $SERVER; reply $(wc -c <"$WORK/ours.out") bytes shown (ours), $(wc -c <"$WORK/theirs.out") (netkit)"
echo "# $(nproc) cores, $(uname -r), $(date -u +%F), $(go version | cut -d" " -f3), load average $(cut -d" " -f1-3 /proc/loadavg)"
cmp -s "$WORK/ours.out" "$WORK/theirs.out" && echo "# both clients printed the same bytes" ||
  echo "# outputs differ (filtering rules differ; see docs/finger.1 COMPATIBILITY)"

if command -v hyperfine >/dev/null; then
  echo "# $(hyperfine --version), -N --warmup 20 --runs $RUNS"
  hyperfine -N --warmup 20 --runs "$RUNS" --export-markdown "$WORK/bench.md" \
    -n ours "${OURS[*]}" -n ours-static "${STATIC[*]}" -n go-floor "${FLOOR[*]}" -n netkit "${THEIRS[*]}"
  echo
  cat "$WORK/bench.md"
else
  for c in ours ours-static go-floor netkit; do
    case $c in
      ours) cmd=("${OURS[@]}") ;;
      ours-static) cmd=("${STATIC[@]}") ;;
      go-floor) cmd=("${FLOOR[@]}") ;;
      netkit) cmd=("${THEIRS[@]}") ;;
    esac
    start=$(date +%s%N)
    for _ in $(seq 1 "$RUNS"); do "${cmd[@]}" >/dev/null; done
    end=$(date +%s%N)
    echo "$c: $(( (end - start) / RUNS / 1000 )) us per query ($RUNS runs)"
  done
fi

if [ -n "$BASE" ]; then
  # Alternate base and current, RUNS times each; report median and mean.
  echo
  echo "# $BASE vs working tree, default build, alternating, $RUNS runs each"
  for _ in $(seq 1 "$RUNS"); do
    for c in base current; do
      [ "$c" = base ] && bin=$WORK/finger-base || bin=$WORK/finger
      t0=$EPOCHREALTIME
      "$bin" "$U@127.0.0.1:79" >/dev/null
      t1=$EPOCHREALTIME
      echo "$c $(( ${t1//[.,]/} - ${t0//[.,]/} ))"
    done
  done | sort -k1,1 -k2,2n | awk '
    { t[$1, ++n[$1]] = $2; sum[$1] += $2 }
    END { for (c in n) printf "%-8s median %.2f ms  mean %.2f ms  (%d runs)\n", c, t[c, int((n[c] + 1) / 2)] / 1000, sum[c] / n[c] / 1000, n[c] }' | sort
fi
