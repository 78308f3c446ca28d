package finger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the finger port, used when an address has none.
const DefaultPort = "79"

// Defaults used when the corresponding Client field is zero.
const (
	DefaultMaxResponseBytes = 16 << 20
	DefaultIdleTimeout      = 30 * time.Second
)

// ErrResponseTooLarge is wrapped by the error Client.Query returns when a
// reply passes the client's MaxResponseBytes.
var ErrResponseTooLarge = errors.New("finger: response too large")

// A Client sends finger queries. The zero value is ready to use, with the
// limits described by each field. A Client is safe for concurrent use.
//
// The Client has no overall timeout: the context passed to Query bounds the
// whole exchange (dial, write and read). IdleTimeout only bounds the wait
// between two pieces of the reply.
type Client struct {
	// DialContext dials the server. nil means a net.Dialer with its
	// defaults.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// MaxResponseBytes caps the reply: 0 means DefaultMaxResponseBytes,
	// negative means no cap. Query stops at the cap with an error
	// wrapping ErrResponseTooLarge; a reply of exactly the cap is fine.
	MaxResponseBytes int64

	// IdleTimeout is the longest wait for the next byte of the reply
	// (and for the query to be written): 0 means DefaultIdleTimeout,
	// negative means none.
	IdleTimeout time.Duration
}

// DefaultClient is the Client used by Finger.
var DefaultClient = &Client{}

// Finger sends q to addr with DefaultClient and copies the reply to w.
func Finger(ctx context.Context, addr string, q Query, w io.Writer) (int64, error) {
	return DefaultClient.Query(ctx, addr, q, w)
}

// Query connects to addr, sends q and copies the raw reply to w until the
// server closes the connection. It returns the number of reply bytes
// written to w.
//
// addr is "host", "host:port", "[ipv6]", "[ipv6]:port" or a bare IPv6
// address; the port defaults to 79 (see NormalizeAddr). The query line is
// q.String() followed by CR LF, as the netkit client sends it: "/W " only
// when q.Verbose is set, and "/W " alone for a verbose list. Like the
// netkit and BSD clients, Query does not half-close its side of the
// connection after the query: the line end ends the query, and some
// servers (for instance ones built on Twisted, or on Node.js and asyncio
// defaults) drop the connection, and with it the reply still being
// prepared, when they see the client's FIN.
//
// The reply is copied as is; wrap w in a Filter's writer before showing it
// on a terminal.
//
// ctx bounds the whole exchange: its deadline becomes the connection's
// deadline and cancelling it closes the connection. Without a deadline on
// ctx, the dial can wait as long as the operating system lets it; set one,
// or a DialContext with its own connect timeout. Errors start with
// "finger:" and wrap the cause, so callers can tell failures apart:
// errors.As(err, new(*net.DNSError)) for an unknown host,
// errors.Is(err, syscall.ECONNREFUSED) for a refused connection,
// errors.Is(err, context.DeadlineExceeded) or context.Canceled when ctx
// ended the exchange, errors.Is(err, os.ErrDeadlineExceeded) when the
// IdleTimeout passed, errors.Is(err, ErrResponseTooLarge) when the reply
// passed the cap, and errors.Is(err, ErrInvalidQuery) for a query that
// cannot be sent. Whatever the error, the reply bytes received before it
// have been written to w and are counted. A server that closes without
// reading the query can end the connection with a reset instead of a
// normal close: the reply may then be whole, and the error wraps
// syscall.ECONNRESET.
func (c *Client) Query(ctx context.Context, addr string, q Query, w io.Writer) (int64, error) {
	line := q.String()
	if err := checkQueryLine(line); err != nil {
		return 0, err
	}
	hostport, err := NormalizeAddr(addr)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("finger: %s: %w", hostport, err)
	}

	dial := c.DialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", hostport)
	if err != nil {
		return 0, c.wrapErr(ctx, err, false)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	ex := exchange{idle: c.idleTimeout()}
	ex.ctxDeadline, _ = ctx.Deadline()

	ex.setDeadline(conn.SetWriteDeadline)
	if _, err := io.WriteString(conn, line+"\r\n"); err != nil {
		return 0, c.wrapErr(ctx, err, ex.idleFired())
	}

	limit := c.MaxResponseBytes
	if limit == 0 {
		limit = DefaultMaxResponseBytes
	}
	buf := make([]byte, 32<<10)
	var total int64
	for {
		ex.setDeadline(conn.SetReadDeadline)
		n, rerr := conn.Read(buf)
		if n > 0 {
			p := buf[:n]
			over := limit > 0 && total+int64(n) > limit
			if over {
				p = p[:limit-total]
			}
			m, werr := w.Write(p)
			total += int64(m)
			if werr == nil && m < len(p) {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return total, fmt.Errorf("finger: writing reply from %s: %w", hostport, werr)
			}
			if over {
				return total, fmt.Errorf("%w: more than %d bytes from %s", ErrResponseTooLarge, limit, hostport)
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, c.wrapErr(ctx, rerr, ex.idleFired())
		}
	}
}

// idleTimeout returns the effective IdleTimeout; 0 means none.
func (c *Client) idleTimeout() time.Duration {
	switch {
	case c.IdleTimeout == 0:
		return DefaultIdleTimeout
	case c.IdleTimeout < 0:
		return 0
	}
	return c.IdleTimeout
}

// exchange tracks which deadline bounds the current operation.
type exchange struct {
	idle        time.Duration
	ctxDeadline time.Time
	idleSet     bool // the deadline last set was the idle one
}

// setDeadline sets the earlier of ctx's deadline and now+idle with set.
func (e *exchange) setDeadline(set func(time.Time) error) {
	d := e.ctxDeadline
	e.idleSet = false
	if e.idle > 0 {
		if id := time.Now().Add(e.idle); d.IsZero() || id.Before(d) {
			d = id
			e.idleSet = true
		}
	}
	set(d)
}

func (e *exchange) idleFired() bool { return e.idleSet }

// wrapErr turns a dial, write or read error into the error Query returns.
// When ctx ended the exchange (the connection was closed, or its deadline,
// which is ctx's, passed), the error also wraps ctx's error, even if the
// connection noticed first.
func (c *Client) wrapErr(ctx context.Context, err error, idle bool) error {
	ctxErr := ctx.Err()
	if ctxErr == nil && !idle && errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline is ctx's deadline; ctx's own timer
		// may not have fired yet.
		if _, ok := ctx.Deadline(); ok {
			ctxErr = context.DeadlineExceeded
		}
	}
	switch {
	case ctxErr != nil && !errors.Is(err, ctxErr):
		return fmt.Errorf("finger: %w: %w", ctxErr, err)
	case idle && errors.Is(err, os.ErrDeadlineExceeded) && ctxErr == nil:
		return fmt.Errorf("finger: nothing received for %v: %w", c.idleTimeout(), err)
	}
	return fmt.Errorf("finger: %w", err)
}

// checkQueryLine refuses a query line that would not be one line or would
// carry a terminal escape: control bytes (TAB aside) and DEL.
func checkQueryLine(line string) error {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Errorf("%w: byte 0x%02x at offset %d cannot be sent", ErrInvalidQuery, c, i)
		}
	}
	return nil
}

// NormalizeAddr returns addr as host:port for dialing, adding DefaultPort
// when addr has no port:
//
//	"host"        → "host:79"
//	"host:7979"   → "host:7979"
//	"192.0.2.1"   → "192.0.2.1:79"
//	"[::1]"       → "[::1]:79"
//	"[::1]:7979"  → "[::1]:7979"
//	"::1"         → "[::1]:79"  (a bare IPv6 address never has a port)
//
// An empty host, an empty or non-numeric port, a port outside 1-65535,
// spaces, control bytes, and '[', ']', '@' or '/' in a host name are
// errors.
func NormalizeAddr(addr string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("finger: invalid address %q: %s", addr, why)
	}
	if addr == "" {
		return bad("empty")
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c <= ' ' || c == 0x7f {
			return bad("space or control byte")
		}
	}
	host, port := addr, DefaultPort
	switch {
	case strings.HasPrefix(addr, "["):
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return bad("missing ']'")
		}
		host = addr[1:end]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return bad("not an IPv6 address in brackets")
		}
		switch rest := addr[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
		default:
			return bad("unexpected text after ']'")
		}
	case strings.Count(addr, ":") > 1:
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return bad("an IPv6 address with a port goes in brackets: [addr]:port")
		}
		host = a.String()
	case strings.Contains(addr, ":"):
		host, port, _ = strings.Cut(addr, ":")
	}
	if host == "" {
		return bad("empty host")
	}
	if strings.ContainsAny(host, "[]@/") {
		return bad("'[', ']', '@' or '/' in the host name")
	}
	n, err := parsePort(port)
	if err != nil {
		return bad(err.Error())
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}
