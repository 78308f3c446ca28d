# Shared by the interop suite and the benchmarks: installing Debian's finger peers (unpacked,
# never installed: the daemons conflict as packages) and creating test accounts.
# The caller sets CACHE (download/unpack directory, outside the clone, searchable by every user)
# and defines die; CREATED_USERS collects the
# accounts made here, for the caller's cleanup.

APT_PACKAGES=(finger libnet-finger-perl libident socat iproute2 passwd)
DEB_PEERS=(fingerd cfingerd efingerd)   # conflict with each other as packages: unpacked only

install_peers() {
  export DEBIAN_FRONTEND=noninteractive
  umask 022
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
      die "apt-get install ${missing[*]} failed"
  fi
  mkdir -p "$CACHE/debs"
  local need=()
  for p in "${DEB_PEERS[@]}"; do ls "$CACHE/debs/${p}_"*.deb >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    local tmp; tmp=$(mktemp -d); chown _apt "$tmp" 2>/dev/null || true
    (cd "$tmp" && apt-get download "${need[@]}" >/dev/null 2>&1) ||
      { apt-get update -qq && (cd "$tmp" && apt-get download "${need[@]}" >/dev/null); } ||
      die "apt-get download ${need[*]} failed"
    mv "$tmp"/*.deb "$CACHE/debs/"; rm -rf "$tmp"
  fi
  for p in "${DEB_PEERS[@]}"; do
    rm -rf "${CACHE:?}/root/$p"; mkdir -p "$CACHE/root"
    dpkg -x "$(ls -t "$CACHE/debs/${p}_"*.deb | head -1)" "$CACHE/root/$p" || die "dpkg -x $p failed"
  done
  # Some peers run as nobody: every directory down to them must be searchable by others.
  peer_paths
  setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$EFINGERD" ||
    die "nobody cannot run $EFINGERD: the cache $CACHE must be searchable by every user (set FINGER_INTEROP_CACHE to such a directory)"
}

CREATED_USERS=()
mkuser() { # login gecos
  local u=$1 g=$2
  if ! id -u "$u" >/dev/null 2>&1; then
    # Tests running meanwhile may hold the lock on the account files: try again for 5 s.
    local try out
    for try in $(seq 1 50); do
      out=$(useradd -m -d "/home/$u" -s /bin/bash -c "$g" "$u" 2>&1) && break
      grep -q lock <<<"$out" || break
      sleep 0.1
    done
    id -u "$u" >/dev/null 2>&1 || die "useradd $u failed: $out"
    CREATED_USERS+=("$u")
  fi
  chmod 0755 "/home/$u"
}
wfile() { # user file mode content
  printf '%b' "$4" >"/home/$1/$2"; chown "$1:$1" "/home/$1/$2"; chmod "$3" "/home/$1/$2"
}

# Paths of the unpacked peers.
peer_paths() {
  NETKIT=$CACHE/root/fingerd/usr/sbin/in.fingerd
  CFINGERD=$CACHE/root/cfingerd/usr/sbin/cfingerd
  EFINGERD=$CACHE/root/efingerd/usr/sbin/efingerd
}

# prepare_peer_etc: efingerd and cfingerd read /etc/efingerd and /etc/cfingerd. Each runs in a
# private mount namespace that shows it a copy in $WORK: efingerd's Debian scripts made
# executable, cfingerd's Debian config with a short FINGER path. The mount points are created
# when missing and recorded in CREATED_DIRS for the caller's cleanup.
CREATED_DIRS=()
prepare_peer_etc() {
  mkdir -p "$WORK/efingerd-etc" "$WORK/cfingerd-etc"
  cp -a "$CACHE/root/efingerd/etc/efingerd/." "$WORK/efingerd-etc/"
  chmod 0755 "$WORK/efingerd-etc"/*
  cp -a "$CACHE/root/cfingerd/etc/cfingerd/." "$WORK/cfingerd-etc/"
  cp "$CACHE/root/cfingerd/usr/sbin/userlist" "$WORK/cfingerd-etc/userlist"
  sed -i 's|^\([[:space:]]*FINGER[[:space:]]*=\).*|\1 "/etc/cfingerd/userlist"|' "$WORK/cfingerd-etc/cfingerd.conf"
  local d
  for d in /etc/efingerd /etc/cfingerd; do [ -d $d ] || { mkdir $d; CREATED_DIRS+=($d); }; done
  [ -e /var/log/cfingerd.log ] || touch /var/log/cfingerd.log
}

# peer_argv NAME LISTEN: sets ARGV to the command that serves peer NAME (netkit, netkit-fwd,
# efingerd, cfingerd) with socat as its inetd on the socat listen address LISTEN, e.g.
# "TCP-LISTEN:79,reuseaddr,fork". The daemon gets the socket on fds 0-2 and a session of its own.
peer_argv() {
  peer_paths
  case $1 in
    netkit) ARGV=(socat "$2" "EXEC:$NETKIT,nofork,stderr,setsid") ;;
    netkit-fwd) ARGV=(socat "$2" "EXEC:$NETKIT -f,nofork,stderr,setsid") ;;
    efingerd) ARGV=(unshare -m --propagation private bash -c \
      "mount --bind '$WORK/efingerd-etc' /etc/efingerd && exec socat '$2' 'EXEC:$EFINGERD,nofork,setsid,su=nobody'") ;;
    cfingerd) ARGV=(unshare -m --propagation private bash -c \
      "mount --bind '$WORK/cfingerd-etc' /etc/cfingerd && exec socat '$2' 'EXEC:$CFINGERD,nofork,setsid'") ;;
    *) die "unknown peer $1" ;;
  esac
}
