package finger

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults used when the corresponding Forwarder field is zero.
const (
	DefaultMaxHops               = 3
	DefaultForwardConnectTimeout = 5 * time.Second
	DefaultForwardIdleTimeout    = 10 * time.Second
	DefaultForwardTotalTimeout   = 30 * time.Second
	DefaultForwardMaxBytes       = 1 << 20
)

// The lines a Forwarder sends to the remote user. They are deliberate and
// carry no internal detail; the operator log has the cause.
const (
	fwdMsgTooManyHops = "finger: forwarding: too many hops"
	fwdMsgNotAllowed  = "finger: forwarding: host not allowed"
	fwdMsgBadHost     = "finger: forwarding: bad host name"
	fwdMsgNoHost      = "finger: forwarding: no host given"
	fwdMsgUnknownHost = "finger: forwarding: unknown host"
	fwdMsgRefused     = "finger: forwarding: connection refused"
	fwdMsgUnreachable = "finger: forwarding: host unreachable"
	fwdMsgConnFailed  = "finger: forwarding: connection failed"
	fwdMsgTimedOut    = "finger: forwarding: timed out"
	fwdMsgLost        = "finger: forwarding: connection lost"
	fwdMsgTruncated   = "finger: forwarding: reply truncated at "
)

// fwdPort is the finger port, used when a host names no port.
const fwdPort = 79

// A Resolver looks up the addresses of a host name. *net.Resolver
// implements it; tests supply their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Forwarder is a Handler that forwards {Q2} queries ("user@host", RFC 1288
// section 2.5.5). For "user@h1@h2" it connects to the right-most host, h2,
// sends the rest of the query, "user@h1" (with "/W" kept), relays every
// byte h2 sends through Filter, and returns when h2 closes; the Server then
// closes the client's connection.
//
// A host may name a port ("host:port", "[v6addr]:port"); port 79 is used
// otherwise, and other ports must be listed in AllowPorts.
//
// Forwarding is bounded: a hop limit (checked before any name lookup or
// connection), connect, idle and total timeouts, a cap on relayed bytes,
// and an address policy. By default it refuses every address that is not
// a public unicast address: every range of IANA's IPv4 and IPv6
// Special-Purpose Address Registries (loopback, private, shared, link-local,
// documentation, benchmarking, reserved, anycast services, 6to4, Teredo,
// the IPv4-translated ::ffff:0:0:0/96 and the others), multicast, NAT64
// addresses that embed a refused IPv4 address, and this machine's own
// addresses (the request's local address and every interface address).
// IPv4-mapped addresses are checked and dialled as their IPv4 address.
// Every address a name resolves to is checked, and the Forwarder dials the
// checked address itself, so a second lookup cannot change the target.
//
// Loops: RFC 1288 queries carry no header in which a hop count or a
// "seen by" mark could travel, so a server cannot recognise a query it has
// already forwarded. Chains are nevertheless finite: every hop removes one
// host from the query, so a query makes at most as many connections as it
// names hosts, and each server in the chain applies its own hop limit and
// query line cap. A Forwarder never connects to the address and port the
// request arrived on, nor to its own port on any of its own or loopback
// addresses, even when they are allowed.
//
// Each field's zero value is the safe default. A Forwarder must not be
// modified while it is serving; it is safe for concurrent use.
type Forwarder struct {
	// MaxHops caps the number of hosts in a query: a query naming more is
	// refused with "finger: forwarding: too many hops" before any name
	// lookup or connection. 0 means DefaultMaxHops; negative means no
	// cap other than the server's query line cap.
	MaxHops int

	// ConnectTimeout bounds the name lookup and the TCP connection to the
	// next host together: 0 means DefaultForwardConnectTimeout, negative
	// means no bound other than TotalTimeout.
	ConnectTimeout time.Duration
	// IdleTimeout bounds the wait for each piece of the reply (and the
	// sending of the query): 0 means DefaultForwardIdleTimeout, negative
	// means no bound other than TotalTimeout.
	IdleTimeout time.Duration
	// TotalTimeout bounds the whole forwarding, from the lookup to the far
	// side's close: 0 means DefaultForwardTotalTimeout, negative means no
	// bound other than the request's context.
	TotalTimeout time.Duration

	// MaxBytes caps the bytes relayed from the next host, counted before
	// filtering. When the reply is longer, the Forwarder stops reading,
	// closes the connection and ends the reply with the line
	// "finger: forwarding: reply truncated at N bytes". 0 means
	// DefaultForwardMaxBytes; negative means no cap.
	MaxBytes int64

	// Filter is applied to every relayed byte. nil means the UTF-8-safe
	// filter, Filter{UTF8: true}: valid UTF-8 passes, control and escape
	// sequences are shown escaped.
	Filter *Filter

	// AllowPrivate permits private (RFC 1918, fc00::/7), shared
	// (100.64.0.0/10), link-local, site-local, local-use NAT64
	// (64:ff9b:1::/48) and multicast addresses. The other special-purpose
	// ranges stay refused, and so do loopback and this machine's own
	// addresses: they reach this machine's services, and only Allow or
	// AllowHosts permit them.
	AllowPrivate bool
	// Allow lists networks whose addresses are always permitted, whatever
	// their kind (for instance 127.0.0.0/8 to forward to another finger
	// server on this machine). The unspecified address and the Forwarder's
	// own listening address and port are refused even when listed.
	Allow []netip.Prefix
	// AllowHosts lists host names (or address literals) that are always
	// permitted, compared with the host as written in the query, without
	// case and without a trailing dot; all their addresses are accepted,
	// with the same two exceptions as Allow.
	AllowHosts []string
	// AllowPorts lists the ports other than 79 that a query may name.
	// nil permits port 79 only. It applies to every host, allowed or not.
	AllowPorts []uint16

	// Resolver looks up host names; nil means net.DefaultResolver. The
	// Forwarder looks up each name once and dials the checked addresses.
	Resolver Resolver
	// Dial connects to the next host; it is always given an address
	// literal with a port ("192.0.2.1:79", "[2001:db8::1]:79"). nil means
	// a net.Dialer. The context carries the connect timeout.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// Logger receives a record of each failed forwarding with its cause.
	// nil means slog.Default().
	Logger *slog.Logger
}

var _ Handler = (*Forwarder)(nil)

func (f *Forwarder) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}

func (f *Forwarder) maxHops() int {
	switch {
	case f.MaxHops == 0:
		return DefaultMaxHops
	case f.MaxHops < 0:
		return int(^uint(0) >> 1)
	}
	return f.MaxHops
}

func (f *Forwarder) maxBytes() int64 {
	switch {
	case f.MaxBytes == 0:
		return DefaultForwardMaxBytes
	case f.MaxBytes < 0:
		return -1
	}
	return f.MaxBytes
}

// fwdError is a failure whose Msg is the line for the remote user and
// whose Err is the cause for the operator log.
type fwdError struct {
	Msg string
	Err error
}

func (e *fwdError) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *fwdError) Unwrap() error { return e.Err }

// ServeFinger forwards r's query to its right-most host and relays the
// reply to w. A query without a host gets "finger: forwarding: no host
// given".
func (f *Forwarder) ServeFinger(ctx context.Context, w io.Writer, r *Request) {
	q := r.Query
	host, rest, ok := q.NextHop()
	if !ok {
		io.WriteString(w, fwdMsgNoHost+"\n")
		return
	}
	log := f.logger().With("remote", fwdAddrString(r.RemoteAddr), "host", strconv.Quote(host))
	if len(q.Hosts) > f.maxHops() {
		log.Warn("finger: forwarding refused", "hops", len(q.Hosts), "max_hops", f.maxHops())
		io.WriteString(w, fwdMsgTooManyHops+"\n")
		return
	}
	if total := durationOr(f.TotalTimeout, DefaultForwardTotalTimeout); total > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, total)
		defer cancel()
	}
	start := time.Now()
	conn, addr, err := f.connect(ctx, host, fwdLocalAddr(r.LocalAddr))
	if err != nil {
		msg := fwdMsgConnFailed
		var fe *fwdError
		if errors.As(err, &fe) {
			msg = fe.Msg
		}
		log.Warn("finger: forwarding failed", "err", err.Error())
		io.WriteString(w, msg+"\n")
		return
	}
	n, err := f.relay(ctx, conn, rest, w)
	if err != nil {
		log.Warn("finger: forwarding ended early", "addr", addr.String(), "bytes", n,
			"duration", time.Since(start), "err", err.Error())
		return
	}
	log.Debug("finger: forwarded", "addr", addr.String(), "bytes", n, "duration", time.Since(start))
}

// connect checks host against the policy, resolves it once, checks every
// address and dials the first that answers.
func (f *Forwarder) connect(ctx context.Context, host string, local netip.AddrPort) (net.Conn, netip.AddrPort, error) {
	name, port, err := fwdSplitHost(host)
	if err != nil {
		return nil, netip.AddrPort{}, &fwdError{fwdMsgBadHost, err}
	}
	if port != fwdPort && !fwdContains(f.AllowPorts, port) {
		return nil, netip.AddrPort{}, &fwdError{fwdMsgNotAllowed, errors.New("port " + strconv.Itoa(int(port)) + " not in AllowPorts")}
	}
	cctx := ctx
	if ct := durationOr(f.ConnectTimeout, DefaultForwardConnectTimeout); ct > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, ct)
		defer cancel()
	}

	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(name); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
	} else {
		res := f.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		found, err := res.LookupNetIP(cctx, "ip", name)
		if err != nil {
			var de *net.DNSError
			switch {
			case fwdIsTimeout(err) || cctx.Err() != nil:
				return nil, netip.AddrPort{}, &fwdError{fwdMsgTimedOut, err}
			case errors.As(err, &de) && de.IsNotFound:
				return nil, netip.AddrPort{}, &fwdError{fwdMsgUnknownHost, err}
			}
			return nil, netip.AddrPort{}, &fwdError{fwdMsgUnknownHost, err}
		}
		if len(found) == 0 {
			return nil, netip.AddrPort{}, &fwdError{fwdMsgUnknownHost, errors.New("no addresses")}
		}
		for _, a := range found {
			addrs = append(addrs, a.Unmap())
		}
	}
	allowedHost := f.hostAllowed(name) || f.hostAllowed(host)
	for _, a := range addrs {
		if err := f.check(a, port, allowedHost, local); err != nil {
			return nil, netip.AddrPort{}, &fwdError{fwdMsgNotAllowed, err}
		}
	}

	dial := f.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var lastErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, port)
		c, err := dial(cctx, "tcp", ap.String())
		if err == nil {
			return c, ap, nil
		}
		lastErr = err
		if cctx.Err() != nil {
			break
		}
	}
	msg := fwdMsgConnFailed
	switch {
	case fwdIsTimeout(lastErr) || cctx.Err() != nil:
		msg = fwdMsgTimedOut
	case errors.Is(lastErr, syscall.ECONNREFUSED):
		msg = fwdMsgRefused
	case errors.Is(lastErr, syscall.EHOSTUNREACH), errors.Is(lastErr, syscall.ENETUNREACH):
		msg = fwdMsgUnreachable
	}
	return nil, netip.AddrPort{}, &fwdError{msg, lastErr}
}

func fwdIsTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// relay sends the rest of the query and copies the reply, filtered, to w
// until the far side closes. It returns the count of bytes received and
// an error for the log when the reply ended early; the remote user has
// then been told with one line.
func (f *Forwarder) relay(ctx context.Context, c net.Conn, rest Query, w io.Writer) (int64, error) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	total, _ := ctx.Deadline()
	idle := durationOr(f.IdleTimeout, DefaultForwardIdleTimeout)
	deadline := func() time.Time {
		var d time.Time
		if idle > 0 {
			d = time.Now().Add(idle)
		}
		if !total.IsZero() && (d.IsZero() || total.Before(d)) {
			d = total
		}
		return d
	}

	out := &fwdTailWriter{w: w}
	filter := Filter{UTF8: true}
	if f.Filter != nil {
		filter = *f.Filter
	}
	fw := filter.NewWriter(out)
	notice := func(msg string) {
		fw.Close()
		if out.err != nil {
			return
		}
		if out.n > 0 && out.last != '\n' {
			io.WriteString(out, "\n")
		}
		io.WriteString(out, msg+"\n")
	}

	c.SetWriteDeadline(deadline())
	if _, err := io.WriteString(c, rest.String()+"\r\n"); err != nil {
		if fwdIsTimeout(err) {
			notice(fwdMsgTimedOut)
		} else {
			notice(fwdMsgLost)
		}
		return 0, err
	}

	limit := f.maxBytes()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		p := buf
		if limit >= 0 {
			left := limit - n
			if left == 0 {
				// At the cap: one more byte tells a reply that fits
				// exactly from one that is longer.
				p = buf[:1]
			} else if left < int64(len(p)) {
				p = buf[:left]
			}
		}
		c.SetReadDeadline(deadline())
		k, err := c.Read(p)
		if k > 0 {
			if limit >= 0 && n == limit {
				notice(fwdMsgTruncated + strconv.FormatInt(limit, 10) + " bytes")
				return n, errors.New("reply over the byte cap")
			}
			n += int64(k)
			if _, werr := fw.Write(p[:k]); werr != nil {
				return n, werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if cerr := fw.Close(); cerr != nil {
					return n, cerr
				}
				return n, nil
			}
			if fwdIsTimeout(err) {
				notice(fwdMsgTimedOut)
			} else {
				notice(fwdMsgLost)
			}
			return n, err
		}
	}
}

// fwdTailWriter remembers the last byte written and the first error.
type fwdTailWriter struct {
	w    io.Writer
	n    int64
	last byte
	err  error
}

func (t *fwdTailWriter) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.w.Write(p)
	if n > 0 {
		t.n += int64(n)
		t.last = p[n-1]
	}
	if err != nil {
		t.err = err
	}
	return n, err
}

// fwdSplitHost splits a host from a query into a name or address literal
// and a port: "host", "host:port", "192.0.2.1", "192.0.2.1:79",
// "2001:db8::1", "[2001:db8::1]" and "[2001:db8::1]:79". Host names must
// be syntactically valid DNS names; address zones are refused.
func fwdSplitHost(h string) (name string, port uint16, err error) {
	port = fwdPort
	portStr := ""
	switch {
	case strings.HasPrefix(h, "["):
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", 0, errors.New("missing ']'")
		}
		name, portStr = h[1:end], h[end+1:]
		if portStr != "" {
			if portStr[0] != ':' {
				return "", 0, errors.New("junk after ']'")
			}
			portStr = portStr[1:]
			if portStr == "" {
				return "", 0, errors.New("empty port")
			}
		}
		ip, perr := netip.ParseAddr(name)
		if perr != nil || !ip.Is6() {
			return "", 0, errors.New("bracketed host is not an IPv6 address")
		}
	case strings.Count(h, ":") == 1:
		name, portStr, _ = strings.Cut(h, ":")
		if portStr == "" {
			return "", 0, errors.New("empty port")
		}
	default:
		name = h
	}
	if portStr != "" {
		p, perr := strconv.ParseUint(portStr, 10, 16)
		if perr != nil || p == 0 || portStr[0] < '0' || portStr[0] > '9' {
			return "", 0, errors.New("bad port")
		}
		port = uint16(p)
	}
	if ip, perr := netip.ParseAddr(name); perr == nil {
		if ip.Zone() != "" {
			return "", 0, errors.New("address zone not allowed")
		}
		return name, port, nil
	}
	if strings.Contains(name, ":") {
		return "", 0, errors.New("bad address")
	}
	if !fwdValidName(name) {
		return "", 0, errors.New("bad host name")
	}
	return name, port, nil
}

// fwdValidName reports whether s is a DNS host name: dot-separated labels
// of letters, digits, '-' and '_', each 1-63 bytes, not starting or ending
// with '-', at most 253 bytes, with an optional trailing dot.
func fwdValidName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func fwdContains(ports []uint16, p uint16) bool {
	for _, q := range ports {
		if q == p {
			return true
		}
	}
	return false
}

func fwdNormHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func (f *Forwarder) hostAllowed(h string) bool {
	h = fwdNormHost(h)
	for _, a := range f.AllowHosts {
		if fwdNormHost(a) == h {
			return true
		}
	}
	return false
}

// check applies the address policy to one resolved address.
func (f *Forwarder) check(ip netip.Addr, port uint16, allowedHost bool, local netip.AddrPort) error {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return errors.New("unspecified address " + ip.String())
	}
	own := ip.IsLoopback() || fwdIsOwn(ip)
	if local.IsValid() && ip == local.Addr().Unmap() {
		own = true
	}
	localPort := uint16(fwdPort)
	if local.IsValid() {
		localPort = local.Port()
	}
	if own && port == localPort {
		return errors.New("address " + netip.AddrPortFrom(ip, port).String() + " is this server")
	}
	if allowedHost {
		return nil
	}
	for _, p := range f.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if own {
		return errors.New("address " + ip.String() + " is this machine's")
	}
	kind, liftable := fwdClassify(ip)
	if kind == "" {
		return nil
	}
	if liftable && f.AllowPrivate {
		return nil
	}
	return errors.New(kind + " address " + ip.String())
}

// fwdSpecialPrefixes holds every range of IANA's IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 and the RFCs that added to
// them), multicast, the deprecated site-local range and the IPv4-compatible
// range, with whether AllowPrivate lifts the refusal. None of them names an
// ordinary host on the public Internet: they are private, local, reserved,
// for documentation, benchmarking or anycast services, or they translate to
// or tunnel towards an IPv4 address the policy would have to see through.
// IPv4-mapped addresses (::ffff:0:0/96) never reach this table: the policy
// checks and dials them as the IPv4 address they carry.
var fwdSpecialPrefixes = []struct {
	p        netip.Prefix
	kind     string
	liftable bool
}{
	// IPv4 Special-Purpose Address Registry.
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network", false},                // RFC 791
	{netip.MustParsePrefix("10.0.0.0/8"), "private", true},                     // RFC 1918
	{netip.MustParsePrefix("100.64.0.0/10"), "shared", true},                   // RFC 6598
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", false},                  // RFC 1122
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local", true},              // RFC 3927
	{netip.MustParsePrefix("172.16.0.0/12"), "private", true},                  // RFC 1918
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment", false}, // RFC 6890: DS-Lite, PCP and TURN anycast, NAT64 discovery
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation", false},            // RFC 5737
	{netip.MustParsePrefix("192.31.196.0/24"), "AS112", false},                 // RFC 7535
	{netip.MustParsePrefix("192.52.193.0/24"), "AMT", false},                   // RFC 7450
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast", false},     // RFC 7526
	{netip.MustParsePrefix("192.168.0.0/16"), "private", true},                 // RFC 1918
	{netip.MustParsePrefix("192.175.48.0/24"), "AS112", false},                 // RFC 7534
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking", false},            // RFC 2544
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation", false},         // RFC 5737
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation", false},          // RFC 5737
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved", false},                  // RFC 1112
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast", false},          // RFC 919
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", true},                  // RFC 5771

	// IPv6 Special-Purpose Address Registry.
	{netip.MustParsePrefix("::/128"), "unspecified", false},                  // RFC 4291
	{netip.MustParsePrefix("::1/128"), "loopback", false},                    // RFC 4291
	{netip.MustParsePrefix("::/96"), "IPv4-compatible", false},               // RFC 4291, deprecated
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated", false},     // RFC 2765 (SIIT)
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use translation", true}, // RFC 8215
	{netip.MustParsePrefix("100::/64"), "discard", false},                    // RFC 6666
	{netip.MustParsePrefix("100:0:0:1::/64"), "dummy", false},                // RFC 9780
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment", false},  // RFC 2928: Teredo, benchmarking, AMT, AS112, ORCHID, DET
	{netip.MustParsePrefix("2001:db8::/32"), "documentation", false},         // RFC 3849
	{netip.MustParsePrefix("2620:4f:8000::/48"), "AS112", false},             // RFC 7534
	{netip.MustParsePrefix("3fff::/20"), "documentation", false},             // RFC 9637
	{netip.MustParsePrefix("5f00::/16"), "SRv6 SID", false},                  // RFC 9602
	{netip.MustParsePrefix("fc00::/7"), "private", true},                     // RFC 4193
	{netip.MustParsePrefix("fe80::/10"), "link-local", true},                 // RFC 4291
	{netip.MustParsePrefix("fec0::/10"), "site-local", true},                 // RFC 3879, deprecated
	{netip.MustParsePrefix("ff00::/8"), "multicast", true},                   // RFC 4291
}

var (
	fwdNAT64 = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052
	fwd6to4  = netip.MustParsePrefix("2002::/16")    // RFC 3056
)

// fwdClassify returns the kind of a non-public address ("" for a public
// unicast address) and whether AllowPrivate lifts the refusal. An
// IPv4-mapped address is classified as its IPv4 address. A NAT64 address
// of the well-known prefix is classified as the IPv4 address it embeds, so
// it is refused when that address is. A 6to4 address is always refused;
// when its IPv4 address is special the reason names it.
func fwdClassify(ip netip.Addr) (kind string, liftable bool) {
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case fwdNAT64.Contains(ip):
			return fwdClassify(netip.AddrFrom4([4]byte(b[12:16])))
		case fwd6to4.Contains(ip):
			if k, _ := fwdClassify(netip.AddrFrom4([4]byte(b[2:6]))); k != "" {
				return "6to4 of " + k, false
			}
			return "6to4", false
		}
	}
	for _, s := range fwdSpecialPrefixes {
		if s.p.Contains(ip) {
			return s.kind, s.liftable
		}
	}
	return "", false
}

// The machine's interface addresses, refreshed at most every few seconds.
var fwdOwn struct {
	sync.Mutex
	at    time.Time
	addrs map[netip.Addr]struct{}
}

const fwdOwnTTL = 5 * time.Second

func fwdIsOwn(ip netip.Addr) bool {
	fwdOwn.Lock()
	defer fwdOwn.Unlock()
	if fwdOwn.addrs == nil || time.Since(fwdOwn.at) > fwdOwnTTL {
		m := make(map[netip.Addr]struct{})
		if ifas, err := net.InterfaceAddrs(); err == nil {
			for _, a := range ifas {
				if pfx, err := netip.ParsePrefix(a.String()); err == nil {
					m[pfx.Addr().Unmap().WithZone("")] = struct{}{}
				}
			}
		}
		fwdOwn.addrs, fwdOwn.at = m, time.Now()
	}
	_, ok := fwdOwn.addrs[ip.WithZone("")]
	return ok
}

func fwdLocalAddr(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func fwdAddrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
