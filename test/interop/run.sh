#!/usr/bin/env bash
# Interop suite: openfinger's finger and fingerd against Debian's real finger peers (netkit
# fingerd + finger 0.17, cfingerd, efingerd, Perl Net::Finger), each peer on its own test host.
#
# Every host is a network namespace of its own, joined by a bridge that lives in a further
# namespace, so each host has its own port 79, as real hosts do (the netkit client can only use
# port 79). Nothing is routed to or from the machine's own network: the hosts see only each
# other (10.79.0.0/24, fd79::/64). Needs root, iproute2, and Debian's package archive.
#
# Usage: test/interop/run.sh          prints a pass/fail matrix; exit status 1 if any check failed
# Environment: FINGER_INTEROP_CACHE   where downloaded .debs and unpacked peers are kept
#                                     (default /var/cache/openfinger/interop; every user must be
#                                     able to search it: the peers run as nobody)
#              FINGER_INTEROP_KEEP=1  keep the namespaces and work directory for inspection
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The peers run as nobody from the cache: it lives outside the clone (which may be under a
# private /root), in a directory every user can search.
CACHE=${FINGER_INTEROP_CACHE:-/var/cache/openfinger/interop}
WORK=$(mktemp -d /tmp/finger-interop.XXXXXX)
chmod 0755 "$WORK"
TAG=ofi$$                        # namespace name prefix, unique per run
PREFIX=ofitest_                  # test account prefix
SUBNET=10.79.0
SUBNET6=fd79::
PIDS=()

RESULTS=()
FAILED=0

die() { echo "interop: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, test accounts, port 79)"
case $CACHE in *[[:space:],:!\"\'\\]*) die "cache path $CACHE has characters socat cannot carry" ;; esac

. "$REPO/test/lib/peers.bash"

# ------------------------------------------------------------------ hosts
# name → last octet
declare -A HOST=([client]=1 [ours]=2 [netkit]=3 [netkitfwd]=4 [cfingerd]=5 [efingerd]=6 [oursfwd]=7 [oursinetd]=8)

ns() { echo "${TAG}$1"; }
in_host() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }

make_hosts() {
  ip netns add "$(ns sw)" || die "ip netns add failed (no CAP_SYS_ADMIN?)"
  ip -n "$(ns sw)" link add br0 type bridge
  ip -n "$(ns sw)" link set br0 up
  ip -n "$(ns sw)" link set lo up
  local h n
  for h in "${!HOST[@]}"; do
    n=${HOST[$h]}
    ip netns add "$(ns "$h")"
    ip -n "$(ns "$h")" link set lo up
    ip link add "${TAG}h$n" netns "$(ns "$h")" type veth peer name "p$n" netns "$(ns sw)"
    ip -n "$(ns sw)" link set "p$n" master br0 up
    ip -n "$(ns "$h")" link set "${TAG}h$n" name eth0
    ip -n "$(ns "$h")" addr add "$SUBNET.$n/24" dev eth0
    ip -n "$(ns "$h")" addr add "${SUBNET6}$n/64" dev eth0 nodad
    ip -n "$(ns "$h")" link set eth0 up
  done
}

# start_bg HOST CMD... : run CMD in HOST's namespace in the background, remember its PID
start_bg() {
  local h=$1; shift
  ip netns exec "$(ns "$h")" setsid "$@" >>"$WORK/$h.log" 2>&1 &
  PIDS+=($!)
}

wait_port() { # host port
  local i
  for i in $(seq 1 100); do
    in_host "$1" bash -c "exec 3<>/dev/tcp/127.0.0.1/$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "interop: nothing listens on $1:$2; log:" >&2; cat "$WORK/$1.log" >&2; return 1
}

# ------------------------------------------------------------------ accounts
make_users() {
  mkuser ${PREFIX}alice "Alice Liddell,Room 101,5551234,15551239876"
  wfile ${PREFIX}alice .plan 0644 'Alice plan line 1\nGoing down the rabbit hole.\n'
  wfile ${PREFIX}alice .project 0644 'tea party\n'
  mkuser ${PREFIX}bob "Bob 张伟 Zhang,Büro 2,,"
  wfile ${PREFIX}bob .plan 0644 '你好，世界\n'
  mkuser ${PREFIX}hidden "Hidden Person,Secret Room,999,"
  wfile ${PREFIX}hidden .nofinger 0644 'no\n'
  mkuser ${PREFIX}eve "Eve Hacker,Lab,,"
  wfile ${PREFIX}eve .plan 0644 'before\x1b[2Jafter OSC:\x1b]52;c;aGk=\x07 end\n'
}

cleanup() {
  local p u h d
  for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -9 -- "-$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "${FINGER_INTEROP_KEEP:-0}" != 1 ]; then
    for h in "${!HOST[@]}" sw; do ip netns del "$(ns "$h")" 2>/dev/null; done
    for u in "${CREATED_USERS[@]}"; do userdel -r "$u" >/dev/null 2>&1; done
    for d in "${CREATED_DIRS[@]}"; do rmdir "$d" 2>/dev/null; done
    rm -rf "$WORK"
  else
    echo "kept: namespaces $TAG*, work dir $WORK"
  fi
}
trap cleanup EXIT
# A time limit's TERM (or ^C) ends the run through the same cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT

# ------------------------------------------------------------------ checks
# check NAME OUTPUT-FILE PATTERN [PATTERN...]: every pattern (fixed string) must occur
check() {
  local name=$1 out=$2 ok=1 p; shift 2
  for p in "$@"; do
    if [ "${p:0:1}" = '!' ]; then
      grep -qaF -- "${p:1}" "$out" && { ok=0; echo "  [$name] unexpected: ${p:1}"; }
    else
      grep -qaF -- "$p" "$out" || { ok=0; echo "  [$name] missing: $p"; }
    fi
  done
  if [ $ok = 1 ]; then RESULTS+=("PASS  $name"); else
    RESULTS+=("FAIL  $name"); FAILED=1
    echo "  [$name] output was:"; sed -n '1,25p' "$out" | cat -A | sed 's/^/    /'
  fi
}
# run_client NAME HOST CMD... : run a client command on HOST, output in $WORK/NAME.out
run_client() {
  local name=$1 h=$2; shift 2
  timeout 20 ip netns exec "$(ns "$h")" "$@" >"$WORK/$name.out" 2>&1
  echo "exit=$?" >>"$WORK/$name.out"
}

# ------------------------------------------------------------------ main
echo "interop: installing peers" >&2
install_peers
echo "interop: building openfinger" >&2
(cd "$REPO" && go build -o "$WORK/bin/fingerd" ./cmd/fingerd && go build -o "$WORK/bin/finger" ./cmd/finger) ||
  die "go build failed"
chmod -R a+rX "$WORK/bin"
make_users
make_hosts

peer_paths
OURS=$WORK/bin/fingerd
FINGER=$WORK/bin/finger

# Our daemons: default policy; one with forwarding on (test hosts are private addresses).
cat >"$WORK/ours.toml" <<TOML
[server]
listen = [":79"]
user = "nobody"
TOML
cat >"$WORK/oursfwd.toml" <<TOML
[server]
listen = [":79"]
user = "nobody"
[forward]
enabled = true
allow_private = true
max_hops = 4
TOML
start_bg ours "$OURS" -config "$WORK/ours.toml"
start_bg oursfwd "$OURS" -config "$WORK/oursfwd.toml"
start_bg oursinetd socat TCP6-LISTEN:79,ipv6only=0,reuseaddr,fork "EXEC:$OURS -config $WORK/ours.toml -inetd,nofork"
# The peers, with socat as their inetd.
prepare_peer_etc
L="TCP6-LISTEN:79,ipv6only=0,reuseaddr,fork"
peer_argv netkit "$L"; start_bg netkit "${ARGV[@]}"
peer_argv netkit-fwd "$L"; start_bg netkitfwd "${ARGV[@]}"
peer_argv efingerd "TCP-LISTEN:79,reuseaddr,fork"; start_bg efingerd "${ARGV[@]}"
peer_argv cfingerd "TCP-LISTEN:79,reuseaddr,fork"; start_bg cfingerd "${ARGV[@]}"

for h in ours oursfwd oursinetd netkit netkitfwd efingerd cfingerd; do wait_port "$h" 79 || FAILED=1; done

A=${PREFIX}alice
ip_of() { echo "$SUBNET.${HOST[$1]}"; }

# 1. Our client against the peers.
run_client client-netkit client "$FINGER" "$A@$(ip_of netkit)"
check "ours finger -> netkit in.fingerd" "$WORK/client-netkit.out" "Login: $A" "Alice Liddell" "Alice plan line 1" "exit=0"
run_client client-netkit-l client "$FINGER" -l "$A@$(ip_of netkit)"
check "ours finger -l -> netkit in.fingerd" "$WORK/client-netkit-l.out" "Login: $A" "Plan:" "exit=0"
run_client client-netkit-eve client "$FINGER" "${PREFIX}eve@$(ip_of netkit)"
check "ours finger filters netkit's reply" "$WORK/client-netkit-eve.out" "before^[[2Jafter" "end" $'!\x1b' $'!\x07'
run_client client-efingerd client "$FINGER" "$A@$(ip_of efingerd)"
check "ours finger -> efingerd" "$WORK/client-efingerd.out" "Alice Liddell" "exit=0"
run_client client-cfingerd cfingerd "$FINGER" "$A@127.0.0.1"
check "ours finger -> cfingerd (local view)" "$WORK/client-cfingerd.out" "Alice Liddell" "exit=0"
# cfingerd 1.4.3 crashes at random (SIGSEGV) for users without a lastlog record, before the
# plan: ask until one answer gets through, up to 30 times.
for i in $(seq 1 30); do
  run_client client-cfingerd-eve cfingerd "$FINGER" "${PREFIX}eve@127.0.0.1"
  grep -q SIGSEGV "$WORK/client-cfingerd-eve.out" || break
done
check "ours finger escapes cfingerd's raw ESC/BEL" "$WORK/client-cfingerd-eve.out" "before^[[2Jafter" $'!\x1b' $'!\x07'
run_client client-ours6 client "$FINGER" "$A@[${SUBNET6}${HOST[ours]}]"
check "ours finger -> ours over IPv6" "$WORK/client-ours6.out" "Login: $A" "Alice Liddell" "exit=0"

# 2. Real clients against our daemon.
run_client netkit-ours client finger "$A@$(ip_of ours)"
check "netkit finger -> ours" "$WORK/netkit-ours.out" "Login: $A" "Alice Liddell" "Plan:" "Alice plan line 1"
run_client netkit-ours-l client finger -l "$A@$(ip_of ours)"
check "netkit finger -l -> ours (/W)" "$WORK/netkit-ours-l.out" "Login: $A" "Alice Liddell"
run_client netkit-ours-utf8 client finger "${PREFIX}bob@$(ip_of ours)"
check "netkit finger -> ours, UTF-8 user" "$WORK/netkit-ours-utf8.out" "Login: ${PREFIX}bob"
run_client netkit-ours-eve client finger "${PREFIX}eve@$(ip_of ours)"
check "netkit finger -> ours, hostile .plan escaped by the server" "$WORK/netkit-ours-eve.out" "before^[[2Jafter" $'!\x1b' $'!\x07'
run_client netkit-ours-unknown client finger "${PREFIX}nosuch@$(ip_of ours)"
check "netkit finger -> ours, unknown user" "$WORK/netkit-ours-unknown.out" "no such user"
run_client netkit-ours-hidden client finger "${PREFIX}hidden@$(ip_of ours)"
check "netkit finger -> ours, .nofinger user" "$WORK/netkit-ours-hidden.out" "no such user" "!Hidden Person"
run_client netkit-ours-list client finger "@$(ip_of ours)"
check "netkit finger @ours ({C})" "$WORK/netkit-ours-list.out" "exit=0" "!invalid"
run_client netkit-ours-inetd client finger "$A@$(ip_of oursinetd)"
check "netkit finger -> ours in -inetd mode" "$WORK/netkit-ours-inetd.out" "Login: $A" "Alice Liddell"
run_client perl-ours client perl -MNet::Finger -e "print Net::Finger::finger('$A@$(ip_of ours)') // 'undef: '.\$Net::Finger::error"
check "Net::Finger -> ours" "$WORK/perl-ours.out" "Login: $A" "Alice Liddell"
run_client perl-ours-w client perl -MNet::Finger -e "print Net::Finger::finger('$A@$(ip_of ours)', 1) // 'undef'"
check "Net::Finger verbose -> ours" "$WORK/perl-ours-w.out" "Login: $A"

# 3. Forwarding.
run_client fwd-denied client "$FINGER" "$A@$(ip_of netkit)@$(ip_of ours)"
check "ours refuses forwarding by default" "$WORK/fwd-denied.out" "Finger forwarding service denied"
run_client fwd-ours-netkit client "$FINGER" "$A@$(ip_of netkit)@$(ip_of oursfwd)"
check "forward: ours -> netkit" "$WORK/fwd-ours-netkit.out" "Login: $A" "Alice Liddell"
run_client fwd-netkit-ours client "$FINGER" "$A@$(ip_of ours)@$(ip_of netkitfwd)"
check "forward: netkit -f -> ours" "$WORK/fwd-netkit-ours.out" "Login: $A" "Alice Liddell"
run_client fwd-chain client "$FINGER" "$A@$(ip_of ours)@$(ip_of netkitfwd)@$(ip_of oursfwd)"
check "forward chain: ours -> netkit -f -> ours" "$WORK/fwd-chain.out" "Login: $A" "Alice Liddell"
run_client fwd-chain-l client "$FINGER" -l "$A@$(ip_of netkit)@$(ip_of oursfwd)"
check "forward keeps /W: ours -> netkit" "$WORK/fwd-chain-l.out" "Login: $A"

echo
echo "interop matrix"
printf '%s\n' "${RESULTS[@]}"
pass=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS')
fail=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL')
echo "interop: $pass passed, $fail failed"
exit $FAILED
