package finger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used when the corresponding Server field is zero.
const (
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultConnTimeout    = 60 * time.Second
	DefaultMaxConns       = 10000
	DefaultMaxConnsPerIP  = 16
	DefaultMaxConnsPerNet = 256
)

// ErrServerClosed is returned by Serve, ListenAndServe and ServeConn after
// Shutdown or Close.
var ErrServerClosed = errors.New("finger: server closed")

// Outcomes of a connection, as logged and reported in Record.Outcome.
const (
	OutcomeOK       = "ok"       // the handler answered
	OutcomeInvalid  = "invalid"  // the query line was not valid
	OutcomeTooLong  = "too-long" // the query line passed the byte cap
	OutcomeTimeout  = "timeout"  // the read timeout or the connection timeout passed
	OutcomeBusy     = "busy"     // refused by a connection cap
	OutcomeEvicted  = "evicted"  // closed before its query to make room for a new connection
	OutcomeRefused  = "refused"  // refused by the Admit hook
	OutcomePanic    = "panic"    // the handler panicked
	OutcomeWriteErr = "write-error"
	OutcomeReadErr  = "read-error"
	OutcomeNoQuery  = "no-query" // the client closed without sending a byte
	OutcomeClosed   = "closed"   // cut off by Close, Shutdown's deadline or ServeConn's ctx
)

// Texts the server itself sends. Each is one line.
const (
	msgInvalid  = "finger: invalid query"
	msgTooLong  = "finger: query too long"
	msgTimeout  = "finger: input timeout"
	msgTooMany  = "finger: too many connections"
	msgBusy     = "finger: server busy"
	msgInternal = "finger: internal error"
)

const (
	// rejectTimeout bounds writing a one-line refusal.
	rejectTimeout = time.Second
	// lingerTimeout and lingerBytes bound the draining of a client's
	// input after an error answer (see lingerClose).
	lingerTimeout = time.Second
	lingerBytes   = 64 << 10
	// maxRejecting caps the connections being refused at once. Past it, a
	// connection over a cap is closed without the refusal line, so a flood
	// cannot pile up goroutines.
	maxRejecting = 256
	// replyBufSize is the reply buffer: the server writes to the socket
	// when it is full, when the handler calls Flush, and at the end.
	replyBufSize = 4096
)

// Record describes one connection's query and outcome; the server logs it
// and passes it to Server.Observe.
type Record struct {
	Time     time.Time // when the server took the connection
	Remote   string    // client address ("ip:port")
	Query    string    // the query line with every control and non-printable byte escaped Go-style (\x00, \n, \u202e), so it cannot forge log lines; "" when none was read
	Kind     string    // "list", "user", "forward", or "" when there was no valid query
	Outcome  string    // one of the Outcome constants
	Bytes    int64     // bytes written to the client, server messages included
	Duration time.Duration
}

// A Server serves finger queries. The zero value is ready to use and has
// safe limits: see each field for what zero and negative values mean.
// Fields must not be changed once the server is serving.
type Server struct {
	// Addr is the address ListenAndServe listens on; "" means ":79".
	Addr string

	// Handler answers valid queries. nil means NotFoundHandler.
	Handler Handler

	// ReadTimeout bounds the time to receive the query line, counted from
	// the connection's start (a client sending one byte at a time does not
	// extend it): 0 means DefaultReadTimeout, negative means none.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write of the reply to the socket (a stalled
	// reader is cut off): 0 means DefaultWriteTimeout, negative means none.
	WriteTimeout time.Duration
	// ConnTimeout bounds the whole connection, query and reply: 0 means
	// DefaultConnTimeout, negative means none. The handler's context ends
	// then.
	ConnTimeout time.Duration
	// MaxQueryBytes caps the query line, line end included: 0 or negative
	// means DefaultMaxQueryBytes. A longer line is answered with
	// "finger: query too long".
	MaxQueryBytes int
	// MaxConns caps connections served at once: 0 means DefaultMaxConns,
	// negative means no cap. A cap is lowered, where the process's
	// descriptor limit is known, to three quarters of that limit less 64,
	// so that the descriptors run out after the cap, not before it, and
	// handlers keep descriptors of their own.
	//
	// When a connection arrives at the cap, the connection that has waited
	// longest without delivering its query is closed to make room (outcome
	// "evicted"): reset if it is a TCP connection, else with the line
	// "finger: server busy". A client that sends its query at once is
	// always served, however many silent connections are held. Only when
	// every connection has delivered its query is the new one refused with
	// "finger: too many connections".
	MaxConns int
	// MaxConnsPerIP caps connections at once from one client: one IPv4
	// address, or one IPv6 /64 (IPv4-mapped IPv6 addresses count as IPv4;
	// the PROXY protocol's client address when there is one): 0 means
	// DefaultMaxConnsPerIP, negative means no cap. Over the cap, the
	// connection is refused with "finger: too many connections".
	MaxConnsPerIP int
	// MaxConnsPerNet caps connections at once from one IPv6 /48, so that
	// one network's many /64s cannot outweigh everyone else: 0 means
	// DefaultMaxConnsPerNet, negative means no cap. At the cap, the
	// network's connection that has waited longest for its query is
	// evicted as for MaxConns; when there is none, the new connection is
	// refused.
	MaxConnsPerNet int

	// Admit, if set, is called for each connection that passed the caps,
	// before the query is read. A non-nil error refuses the connection:
	// its text (control bytes replaced by spaces) is sent as one line and
	// the connection closed.
	Admit func(remote net.Addr) error

	// Logger receives one record per connection: at Info level when the
	// query was answered, Warn for refusals and errors, Error for panics
	// (with the panic value and stack). Connections that come in floods
	// are logged at Debug level and counted: those evicted or refused by
	// the connection caps in a Warn record at most once a minute, and
	// those that end without a query (the read timeout passed, or the
	// client closed) in an Info record at most once a minute. A record
	// that is due is written early when Shutdown (once the connections
	// have finished) or Close closes the server.
	// nil means slog.Default().
	Logger *slog.Logger
	// Observe, if set, is called with each connection's record after it
	// is logged (for metrics). It runs on the connection's goroutine.
	Observe func(Record)

	mu          sync.Mutex
	listeners   map[*net.Listener]struct{}
	conns       map[net.Conn]context.CancelFunc // every connection not yet closed: its handler's cancel once it runs
	active      int                             // connections within the caps
	maxConns    int                             // the effective MaxConns; 0 until the first admission
	perIP       map[string]int
	perNet      map[string]*netGroup
	waiting     waitList // admitted connections without their query, oldest first
	rejecting   int
	pressureLog countLog // evictions and refusals by the caps
	quietLog    countLog // connections that ended without a query: timed out or closed by the client
	refusedLog  countLog // refusals by Admit
	inShutdown  atomic.Bool
	force       context.Context // done at Close or Shutdown's deadline
	forceClose  context.CancelFunc
	wg          sync.WaitGroup // one per connection; Add only under mu before shutdown
}

// NotFoundHandler answers every query with "finger: no such user.".
var NotFoundHandler Handler = HandlerFunc(func(ctx context.Context, w io.Writer, r *Request) {
	io.WriteString(w, "finger: no such user.\n")
})

func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func intOr(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// forceCtx returns the context that is done when connections must stop.
// s.mu must be held.
func (s *Server) forceCtx() context.Context {
	if s.force == nil {
		s.force, s.forceClose = context.WithCancel(context.Background())
	}
	return s.force
}

// ListenAndServe listens on TCP address s.Addr (":79" if empty) and calls
// Serve.
func (s *Server) ListenAndServe() error {
	if s.inShutdown.Load() {
		return ErrServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = ":79"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves each in its own goroutine. It
// always returns a non-nil error and closes l; after Shutdown or Close the
// error is ErrServerClosed. Temporary accept errors (such as running out
// of file descriptors) are logged and retried with a growing delay, up to
// one second.
//
// A connection that implements syscall.Conn, as *net.TCPConn does, is used
// through its descriptor until its query arrives: the server peeks at it
// rather than reading, so that a silent client holds no buffer, and
// writes the line that ends a silent connection ("finger: server busy",
// "finger: input timeout") to it directly, together with the FIN. A
// wrapper that changes the bytes it carries must therefore not implement
// syscall.Conn.
func (s *Server) Serve(l net.Listener) error {
	defer l.Close()
	if !s.trackListener(&l, true) {
		return ErrServerClosed
	}
	defer s.trackListener(&l, false)
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.logger().Warn("finger: accept error; retrying", "err", err, "delay", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.done():
					t.Stop()
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		delay = 0
		if !s.ServeAccepted(c) {
			c.Close()
			return ErrServerClosed
		}
	}
}

// ServeAccepted serves c, a connection the caller accepted itself, in a
// goroutine of its own, as Serve serves the connections it accepts: the
// same deadlines, caps and logging, and Shutdown waits for it. It reports
// false, leaving c open, once Shutdown or Close has begun, so that a
// caller that replaces one Server by another can hand c to the new one.
// A program with its own accept loop uses it instead of a Listener that
// passes connections on to Serve, which would take one more goroutine
// switch per connection.
func (s *Server) ServeAccepted(c net.Conn) bool {
	if !s.startConn(c) {
		return false
	}
	go func() {
		defer s.wg.Done()
		s.serve(context.Background(), c)
	}()
	return true
}

func (s *Server) done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forceCtx().Done()
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// ServeConn serves one query on c and closes it, with the same deadlines,
// caps and logging as Serve. It is what inetd mode uses, with c wrapping
// standard input and output. When ctx is done the connection is cut off.
//
// It returns nil when the handler answered, and otherwise an error
// describing the failed exchange (bad query, timeout, write error, panic);
// the client has then been told what it needs to know. After Shutdown or
// Close it closes c and returns ErrServerClosed.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	if !s.startConn(c) {
		c.Close()
		return ErrServerClosed
	}
	defer s.wg.Done()
	return s.serve(ctx, c)
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = make(map[*net.Listener]struct{})
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
	}
	return true
}

// startConn registers c so that Shutdown waits for it and Close closes
// it. It reports false once the server is shutting down.
func (s *Server) startConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]context.CancelFunc)
	}
	s.conns[c] = nil
	s.wg.Add(1)
	return true
}

// A HeaderConn is a connection whose client address arrives in a header
// before the query, as with the PROXY protocol. The Server counts such a
// connection against MaxConns before anything is read from it, as a
// connection still waiting for its query (which may be evicted); it then
// calls ReadHeader under the read timeout, and applies MaxConnsPerIP,
// MaxConnsPerNet and Admit to the address ReadHeader returns.
// RemoteAddr must not read from the connection: before the header it is
// the address of the peer.
//
// If a HeaderConn also implements syscall.Conn, the server waits for the
// header by peeking at the descriptor, so that a silent connection holds
// no buffer; SyscallConn must fail once bytes may be buffered above the
// descriptor.
type HeaderConn interface {
	net.Conn
	ReadHeader() (net.Addr, error)
}

// clientKeys returns the per-client key of a remote address (its IPv4
// address, its IPv6 /64, which one client usually holds whole, or the
// whole address for non-IP transports) and its network key (its IPv6 /48;
// "" for IPv4 and other transports).
func clientKeys(a net.Addr) (key, netKey string) {
	if a == nil {
		return "", ""
	}
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	if !ip.IsValid() {
		return a.String(), ""
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p64, _ := ip.Prefix(64)
		p48, _ := ip.Prefix(48)
		return p64.String(), p48.String()
	}
	return ip.String(), ""
}

// Admission results.
const (
	admitted = iota
	overCap
	overCapSilent // over a cap while too many refusals are under way
	wasEvicted    // evicted while its client was not known yet
)

// waitLink is a connection's place in one waitList.
type waitLink struct {
	prev, next *connState
	in         bool
}

// waitList is a list of the connections waiting for their query, oldest
// first, linked through connState.links[link]: adding, removing and
// finding the oldest take constant time.
type waitList struct {
	head, tail *connState
	link       int
}

func (l *waitList) push(cs *connState) {
	lk := &cs.links[l.link]
	lk.prev, lk.next, lk.in = l.tail, nil, true
	if l.tail != nil {
		l.tail.links[l.link].next = cs
	} else {
		l.head = cs
	}
	l.tail = cs
}

func (l *waitList) remove(cs *connState) {
	lk := &cs.links[l.link]
	if !lk.in {
		return
	}
	if lk.prev != nil {
		lk.prev.links[l.link].next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		lk.next.links[l.link].prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	*lk = waitLink{}
}

// netGroup is one IPv6 /48's connections.
type netGroup struct {
	n       int
	waiting waitList // through links[1]
}

// admit counts cs against the caps. A connection whose client is known
// (cs.key set) is checked against the per-client caps first; one whose
// client comes in a header is counted against MaxConns only, and
// admitClient does the rest. At MaxConns, and at MaxConnsPerNet, the
// connection that has waited longest for its query makes room.
func (s *Server) admit(cs *connState) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxConns == 0 {
		s.maxConns = effectiveMaxConns(s.MaxConns)
	}
	if cs.keyed {
		if !s.roomForClientLocked(cs) {
			return s.overCapLocked(cs)
		}
	}
	if s.maxConns > 0 && s.active >= s.maxConns {
		v := s.waiting.head
		if v == nil {
			return s.overCapLocked(cs)
		}
		s.evictLocked(v)
	}
	s.active++
	cs.counted = true
	s.waiting.push(cs)
	if cs.keyed {
		s.addClientLocked(cs)
	}
	return admitted
}

// admitClient applies the per-client caps to a connection admitted
// without a client (a HeaderConn) once its client is known. It returns
// overCap (or overCapSilent) after releasing the connection's place, and
// wasEvicted when the connection was evicted meanwhile.
func (s *Server) admitClient(cs *connState) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs.evicted {
		return wasEvicted
	}
	cs.keyed = true
	if !s.roomForClientLocked(cs) {
		s.releaseLocked(cs)
		return s.overCapLocked(cs)
	}
	s.addClientLocked(cs)
	return admitted
}

// roomForClientLocked reports whether cs's client and network have room
// for it, evicting a connection of the same network if that makes room.
func (s *Server) roomForClientLocked(cs *connState) bool {
	if maxIP := intOr(s.MaxConnsPerIP, DefaultMaxConnsPerIP); maxIP > 0 && s.perIP[cs.key] >= maxIP {
		return false
	}
	if cs.netKey == "" {
		return true
	}
	maxNet := intOr(s.MaxConnsPerNet, DefaultMaxConnsPerNet)
	if g := s.perNet[cs.netKey]; maxNet > 0 && g != nil && g.n >= maxNet {
		v := g.waiting.head
		if v == nil {
			return false
		}
		s.evictLocked(v)
	}
	return true
}

func (s *Server) addClientLocked(cs *connState) {
	if s.perIP == nil {
		s.perIP = make(map[string]int)
	}
	s.perIP[cs.key]++
	if cs.netKey == "" {
		return
	}
	if s.perNet == nil {
		s.perNet = make(map[string]*netGroup)
	}
	g := s.perNet[cs.netKey]
	if g == nil {
		g = &netGroup{waiting: waitList{link: 1}}
		s.perNet[cs.netKey] = g
	}
	g.n++
	if cs.links[0].in {
		g.waiting.push(cs)
	}
}

func (s *Server) overCapLocked(cs *connState) int {
	if s.rejecting >= maxRejecting {
		return overCapSilent
	}
	s.rejecting++
	cs.rejecting = true
	return overCap
}

// evictLocked takes v's place under the caps away and wakes it: it sees
// that it was evicted, says so and closes.
func (s *Server) evictLocked(v *connState) {
	s.releaseLocked(v)
	v.evicted = true
	v.c.SetReadDeadline(time.Unix(1, 0))
}

// releaseLocked gives up cs's place under the caps.
func (s *Server) releaseLocked(cs *connState) {
	if !cs.counted {
		return
	}
	cs.counted = false
	s.active--
	s.waiting.remove(cs)
	if !cs.keyed {
		return
	}
	if s.perIP[cs.key]--; s.perIP[cs.key] <= 0 {
		delete(s.perIP, cs.key)
	}
	if g := s.perNet[cs.netKey]; g != nil {
		g.waiting.remove(cs)
		if g.n--; g.n <= 0 {
			delete(s.perNet, cs.netKey)
		}
	}
}

// queryRead marks cs as no longer waiting for its query: it can no longer
// be evicted. It reports whether it was evicted before and, if not,
// returns the context that is done when connections must stop (fetched
// under the same lock: this is on every query's path).
//
// A query that arrived brings cancel, its handler's: Close and Shutdown's
// deadline (closeConns) call it, at once if they already have.
func (s *Server) queryRead(cs *connState, cancel context.CancelFunc) (force context.Context, evicted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs.evicted {
		return nil, true
	}
	s.waiting.remove(cs)
	if g := s.perNet[cs.netKey]; g != nil {
		g.waiting.remove(cs)
	}
	force = s.forceCtx()
	if cancel != nil {
		if force.Err() != nil {
			cancel()
		} else if _, ok := s.conns[cs.c]; ok {
			s.conns[cs.c] = cancel
		}
	}
	return force, false
}

// effectiveMaxConns is MaxConns with its default, lowered to what the
// descriptor limit can hold; -1 means no cap.
func effectiveMaxConns(n int) int {
	max := intOr(n, DefaultMaxConns)
	if max == 0 {
		return -1
	}
	if fds := descriptorLimit(); fds > 0 {
		if c := (fds - 64) * 3 / 4; c < max {
			max = c
		}
	}
	if max < 1 {
		max = 1
	}
	return max
}

// serve runs one registered connection from admission to close. Its own
// frame is small: an admitted client that has not sent its query yet waits
// in waitReadable with a shallow stack, so that the runtime can shrink it.
func (s *Server) serve(ctx context.Context, c net.Conn) error {
	cs := &connState{s: s, c: c, ctx: ctx, start: time.Now()}
	hc, header := c.(HeaderConn)
	if !cs.admit(!header) {
		return cs.err
	}
	if ctx.Done() != nil {
		// ServeConn with a context that can end: end the wait and the
		// read with it.
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if header {
		return cs.serveHeader(hc)
	}
	if pre, waitErr, ok := readNow(c, intOr(s.MaxQueryBytes, DefaultMaxQueryBytes)); ok {
		return cs.serve(waitErr, &pre)
	}
	return cs.serve(waitReadable(c), nil)
}

// connState is one connection being served.
type connState struct {
	s      *Server
	c      net.Conn
	ctx    context.Context
	start  time.Time
	rec    Record
	cw     connWriter
	remote net.Addr
	key    string // per-client key
	netKey string // per-network key ("" for none)
	// The fields below are guarded by s.mu.
	keyed     bool        // key and netKey are known and counted
	counted   bool        // the connection holds a place under the caps
	rejecting bool        // counted in s.rejecting
	evicted   bool        // evicted while waiting for its query
	links     [2]waitLink // in s.waiting, and in its netGroup's list

	linger   bool // close with lingerClose
	panicVal any
	stack    []byte
	err      error
}

// finish closes the connection, releases its place under the caps and
// logs its record. The connection keeps its place until it is closed,
// lingering included, so that a flood of bad queries cannot pass the caps.
func (cs *connState) finish() {
	if cs.linger {
		lingerClose(cs.c)
	} else {
		cs.c.Close()
	}
	s := cs.s
	s.mu.Lock()
	s.releaseLocked(cs)
	if cs.rejecting {
		cs.rejecting = false
		s.rejecting--
	}
	delete(s.conns, cs.c)
	s.mu.Unlock()
	cs.rec.Bytes = cs.cw.n
	cs.rec.Duration = time.Since(cs.start)
	s.log(cs.ctx, &cs.rec, cs.err, cs.panicVal, cs.stack)
}

// recoverPanic turns a panic of the Admit hook into the connection's
// outcome (admit then reports false); handler panics are recovered in
// callHandler.
func (cs *connState) recoverPanic() {
	if p := recover(); p != nil {
		cs.rec.Outcome = OutcomePanic
		cs.panicVal, cs.stack = p, debug.Stack()
		cs.err = fmt.Errorf("finger: panic: %v", p)
		cs.linger = false
	}
}

// admit counts the connection against the caps and asks the Admit hook;
// keyed is false for a HeaderConn, whose client is not known yet (its
// per-client caps and Admit come in serveHeader). It reports false when
// the connection was refused, and then has finished it.
func (cs *connState) admit(keyed bool) (ok bool) {
	s, c := cs.s, cs.c
	cs.rec.Time = cs.start
	cs.cw = connWriter{c: c, timeout: durationOr(s.WriteTimeout, DefaultWriteTimeout)}
	defer func() {
		if !ok {
			cs.finish()
		}
	}()
	defer cs.recoverPanic()

	cs.remote = c.RemoteAddr()
	if cs.remote != nil {
		cs.rec.Remote = cs.remote.String()
	}
	// Until the query has arrived the connection holds no context, timer
	// or buffer of its own (an idle client costs little): deadlines bound
	// the wait, and Close closes the connection itself. The read deadline
	// is set before admission, so that an eviction's cannot be undone.
	if total := durationOr(s.ConnTimeout, DefaultConnTimeout); total > 0 {
		cs.cw.deadline = cs.start.Add(total)
	}
	if rt := durationOr(s.ReadTimeout, DefaultReadTimeout); rt > 0 {
		d := cs.start.Add(rt)
		if !cs.cw.deadline.IsZero() && cs.cw.deadline.Before(d) {
			d = cs.cw.deadline
		}
		c.SetReadDeadline(d)
	} else if !cs.cw.deadline.IsZero() {
		c.SetReadDeadline(cs.cw.deadline)
	}
	if keyed {
		cs.key, cs.netKey = clientKeys(cs.remote)
		cs.keyed = true
	}
	return cs.admitted(s.admit(cs), keyed)
}

// admitted handles the result of an admission and, for a known client,
// asks the Admit hook. It reports false when the connection was refused.
func (cs *connState) admitted(admission int, askHook bool) bool {
	s := cs.s
	switch admission {
	case wasEvicted:
		cs.evict()
		return false
	case overCapSilent:
		cs.rec.Outcome = OutcomeBusy
		cs.err = errors.New(msgTooMany)
		return false
	case overCap:
		cs.refuse(OutcomeBusy, errors.New(msgTooMany), true)
		return false
	}
	if askHook && s.Admit != nil {
		if aerr := s.Admit(cs.remote); aerr != nil {
			cs.refuse(OutcomeRefused, aerr, true)
			return false
		}
	}
	return true
}

// refuse tells a connection that is not served why, in one line written
// within rejectTimeout, and records outcome and err; linger closes it with
// lingerClose (for a client that may have sent its query).
func (cs *connState) refuse(outcome string, err error, linger bool) {
	cs.rec.Outcome = outcome
	cs.err = err
	cs.cw.deadline = time.Now().Add(rejectTimeout)
	cs.cw.writeLine(oneLine(err.Error()))
	cs.linger = linger
}

// errEvictedReset is the error of a connection reset to make room.
var errEvictedReset = errors.New("finger: reset to make room for a new connection (no query yet)")

// evict ends a connection evicted before its query. A TCP connection is
// reset: no line, no FIN exchange, no TIME_WAIT, so that a flood that
// reopens what is evicted costs both ends a segment and a system call less
// per connection; the oldest connection without a query is in practice
// never a real client's, which sends its query within one round trip.
// Other connections are told msgBusy (closingLine).
func (cs *connState) evict() {
	if l, ok := cs.c.(interface{ SetLinger(sec int) error }); ok && l.SetLinger(0) == nil {
		cs.rec.Outcome = OutcomeEvicted
		cs.err = errEvictedReset
		return
	}
	cs.closingLine(OutcomeEvicted, msgBusy)
}

// closingLine ends a connection that has sent no query with the server's
// line and records outcome, as refuse does, but cheaper where it can: the
// line leaves with the connection's FIN, in one segment (sendLastLine).
// An idle flood's connections that reach the read timeout get these lines
// by the hundred a second.
func (cs *connState) closingLine(outcome, line string) {
	if n, ok := sendLastLine(cs.c, line); ok {
		cs.cw.n += int64(n)
		cs.rec.Outcome = outcome
		cs.err = errors.New(line)
		return
	}
	cs.refuse(outcome, errors.New(line), false)
}

// serveHeader reads a HeaderConn's header, admits its client and serves
// it.
func (cs *connState) serveHeader(hc HeaderConn) error {
	err := waitReadable(hc)
	var remote net.Addr
	if err == nil {
		remote, err = hc.ReadHeader()
	}
	if err != nil {
		return cs.serve(err, nil)
	}
	if remote != nil {
		cs.remote = remote
		cs.rec.Remote = remote.String()
	}
	cs.key, cs.netKey = clientKeys(cs.remote)
	ok := func() (ok bool) {
		defer func() {
			if !ok {
				cs.finish()
			}
		}()
		defer cs.recoverPanic()
		return cs.admitted(cs.s.admitClient(cs), true)
	}()
	if !ok {
		return cs.err
	}
	return cs.serve(waitReadable(hc), nil)
}

// serve reads the query (waitErr is the result of waiting for it to
// arrive; pre, when not nil and waitErr is nil, what readNow read of it),
// calls the handler and finishes the connection.
func (cs *connState) serve(waitErr error, pre *preRead) error {
	s, c, ctx := cs.s, cs.c, cs.ctx
	defer cs.finish()
	rec, cw := &cs.rec, &cs.cw
	line, rerr := "", waitErr
	if rerr == nil {
		growStack()
		line, rerr = readLine(c, intOr(s.MaxQueryBytes, DefaultMaxQueryBytes), pre)
	}
	// The handler's context: ServeConn's ctx, the total deadline, and the
	// server's force close (closeConns cancels it). When it is done,
	// pending writes on c fail at once: they never wait past the total
	// deadline, closeConns closes c, and serve ends them when ServeConn's
	// ctx ends.
	var cancel context.CancelFunc
	hctx := ctx
	if rerr == nil {
		if !cw.deadline.IsZero() {
			hctx, cancel = context.WithDeadline(hctx, cw.deadline)
		} else {
			hctx, cancel = context.WithCancel(hctx)
		}
		defer cancel()
	}
	force, evicted := s.queryRead(cs, cancel)
	if evicted {
		// Evicted while waiting: its place is taken.
		cs.evict()
		return cs.err
	}
	if rerr != nil {
		switch {
		case ctx.Err() != nil:
			rec.Outcome = cutOff(ctx)
		case force.Err() != nil: // Close or a Shutdown deadline
			rec.Outcome = OutcomeClosed
		case errors.Is(rerr, ErrQueryTooLong):
			rec.Outcome = OutcomeTooLong
			cw.writeLine(msgTooLong)
			cs.linger = true
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			cs.closingLine(OutcomeTimeout, msgTimeout)
		case errors.Is(rerr, io.EOF):
			rec.Outcome = OutcomeNoQuery
		default:
			rec.Outcome = OutcomeReadErr
		}
		cs.err = rerr
		return rerr
	}

	ctx = hctx
	rec.Query = escapeLog(line)
	// The read deadline stays: nothing reads c again but lingerClose,
	// which sets its own, and closing c drops its timer.
	q, perr := ParseQuery(line)
	if perr != nil {
		rec.Outcome = OutcomeInvalid
		cw.writeLine(msgInvalid)
		cs.linger = true
		cs.err = perr
		return perr
	}
	rec.Kind = queryKind(q)

	h := s.Handler
	if h == nil {
		h = NotFoundHandler
	}
	req := &Request{Query: q, Line: line, RemoteAddr: cs.remote, LocalAddr: c.LocalAddr()}
	rw := &replyWriter{w: cw}
	defer rw.release()
	if cs.panicVal, cs.stack = callHandler(ctx, h, rw, req); cs.stack != nil {
		// Tell the client only if nothing of the reply has left.
		if cw.n == 0 {
			cw.writeLine(msgInternal)
		}
		rec.Outcome = OutcomePanic
		cs.err = fmt.Errorf("finger: handler panic: %v", cs.panicVal)
		return cs.err
	}
	if werr := rw.finish(); werr != nil {
		rec.Outcome = OutcomeWriteErr
		if ctx.Err() != nil {
			rec.Outcome = cutOff(ctx)
		}
		cs.err = werr
		return werr
	}
	rec.Outcome = OutcomeOK
	return nil
}

// growStack makes the calling goroutine's stack big enough for answering
// a query in one step, while it is still shallow. The goroutine waits for
// its query on the smallest stack, so that idle connections cost little;
// an answer (the handler, the reply's filter, the log record) then needs
// about 8 KiB more, and growing there, deep in the calls, took the
// runtime three copies of a stack of many frames, each frame's pointers
// adjusted (about 5 % of fingerd's CPU time answering {U} queries; 2 %
// with this one copy, of a few frames, to a stack from the P's cache).
//
//go:noinline
func growStack() {
	var frame [growStackBytes]byte
	touchFrame(frame[:])
}

const growStackBytes = 8 << 10

// touchFrame keeps the compiler from removing growStack's frame.
//
//go:noinline
func touchFrame(b []byte) { b[0] = 1 }

// callHandler runs h, recovering a panic: stack is non-nil after one.
func callHandler(ctx context.Context, h Handler, w io.Writer, r *Request) (panicVal any, stack []byte) {
	defer func() {
		if p := recover(); p != nil {
			panicVal, stack = p, debug.Stack()
		}
	}()
	h.ServeFinger(ctx, w, r)
	return nil, nil
}

// cutOff names the outcome of a connection whose context ended early.
func cutOff(ctx context.Context) string {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return OutcomeTimeout
	}
	return OutcomeClosed
}

// oneLine replaces control bytes in s by spaces so that it is one line.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

func queryKind(q Query) string {
	switch {
	case len(q.Hosts) > 0:
		return "forward"
	case q.User == "":
		return "list"
	}
	return "user"
}

func (s *Server) log(ctx context.Context, rec *Record, err error, panicVal any, stack []byte) {
	level := slog.LevelWarn
	switch rec.Outcome {
	case OutcomeOK:
		level = slog.LevelInfo
	case OutcomeEvicted, OutcomeBusy:
		// Evictions and refusals by the caps come in floods: each is a
		// Debug record, and a Warn record counts them at most once a
		// minute.
		level = slog.LevelDebug
		s.pressureLog.note(ctx, s.logger(), pressureCounts, rec.Outcome == OutcomeBusy)
	case OutcomeNoQuery, OutcomeTimeout:
		if rec.Kind != "" {
			break // timed out after its query
		}
		// So do idle connections that time out or that their client
		// closes: each is a Debug record, and an Info record counts them
		// at most once a minute.
		level = slog.LevelDebug
		s.quietLog.note(ctx, s.logger(), quietCounts, rec.Outcome == OutcomeNoQuery)
	case OutcomeRefused:
		// Refusals by Admit (fingerd: the query rate limit) come in floods
		// too, one per connection of a client over its rate: each is a
		// Debug record, and a Warn record counts them at most once a
		// minute.
		level = slog.LevelDebug
		s.refusedLog.note(ctx, s.logger(), refusedCounts, false)
	case OutcomePanic:
		level = slog.LevelError
	}
	if h := s.logger().Handler(); h.Enabled(ctx, level) {
		// The record goes to the handler directly: a Logger would also
		// find its caller for each one (runtime.Callers, about 1 % of the
		// CPU time of an answer), which the record does not need.
		r := slog.NewRecord(time.Now(), level, "finger query", 0)
		r.AddAttrs(
			slog.Time("start", rec.Time),
			slog.String("remote", rec.Remote),
			slog.String("query", rec.Query),
			slog.String("kind", rec.Kind),
			slog.String("outcome", rec.Outcome),
			slog.Int64("bytes", rec.Bytes),
			slog.Duration("duration", rec.Duration),
		)
		if err != nil && rec.Outcome != OutcomeOK {
			r.AddAttrs(slog.String("err", err.Error()))
		}
		if rec.Outcome == OutcomePanic {
			r.AddAttrs(slog.String("panic", fmt.Sprint(panicVal)), slog.String("stack", string(stack)))
		}
		h.Handle(context.WithoutCancel(ctx), r)
	}
	if s.Observe != nil {
		s.Observe(*rec)
	}
}

// countKind is what a countLog counts: its record's level, message and
// the names of its two counts.
type countKind struct {
	level slog.Level
	msg   string
	names [2]string
}

var (
	pressureCounts = &countKind{slog.LevelWarn,
		"finger: under connection pressure: connections evicted before their query, or refused by a cap (each logged at debug level)",
		[2]string{"evicted", "refused"}}
	quietCounts = &countKind{slog.LevelInfo,
		"finger: connections closed without a query: timed out, or closed by the client (each logged at debug level)",
		[2]string{"timed_out", "no_query"}}
	refusedCounts = &countKind{slog.LevelWarn,
		"finger: connections refused by the admission policy, such as the query rate limit (each logged at debug level)",
		[2]string{"refused"}}
)

// countLog counts connections of a kind that comes in floods for one
// record at most once a minute: the first one at once, the ones that
// follow within the minute in one record at its end, or earlier when the
// server has closed (at the end of Shutdown, or at Close), so that the
// count is not lost when the process exits.
type countLog struct {
	mu   sync.Mutex
	n    [2]int64
	last time.Time
	// The record due at last + 1 minute, if any: its timer, and where it
	// goes.
	timer *time.Timer
	kind  *countKind
	ctx   context.Context
	log   *slog.Logger
}

// note counts one connection: in the kind's second count if second, else
// in its first.
func (l *countLog) note(ctx context.Context, log *slog.Logger, kind *countKind, second bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kind = kind
	if second {
		l.n[1]++
	} else {
		l.n[0]++
	}
	if l.timer != nil {
		return
	}
	if wait := time.Until(l.last.Add(time.Minute)); !l.last.IsZero() && wait > 0 {
		l.ctx, l.log = ctx, log
		l.timer = time.AfterFunc(wait, l.flushPending)
		return
	}
	l.flushLocked(ctx, log)
}

// flushPending writes the record that was due.
func (l *countLog) flushPending() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer == nil {
		return // written by close
	}
	l.timer = nil
	l.flushLocked(l.ctx, l.log)
}

// close writes the record that is due, if any, at once.
func (l *countLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
		l.flushLocked(l.ctx, l.log)
	}
}

func (l *countLog) flushLocked(ctx context.Context, log *slog.Logger) {
	l.last = time.Now()
	if l.n == [2]int64{} {
		return
	}
	attrs := make([]slog.Attr, 0, 2)
	for i, name := range l.kind.names {
		if name != "" {
			attrs = append(attrs, slog.Int64(name, l.n[i]))
		}
	}
	log.LogAttrs(context.WithoutCancel(ctx), l.kind.level, l.kind.msg, attrs...)
	l.n = [2]int64{}
}

// connWriter writes to the connection with a fresh write deadline per
// write, never past the connection's total deadline, and counts bytes.
type connWriter struct {
	c        net.Conn
	timeout  time.Duration
	deadline time.Time // total deadline; zero = none
	n        int64
}

func (w *connWriter) Write(p []byte) (int, error) {
	var d time.Time
	if w.timeout > 0 {
		d = time.Now().Add(w.timeout)
	}
	if !w.deadline.IsZero() && (d.IsZero() || w.deadline.Before(d)) {
		d = w.deadline
	}
	w.c.SetWriteDeadline(d)
	n, err := w.c.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *connWriter) writeLine(s string) {
	w.Write([]byte(s + "\r\n"))
}

// replyWriter is the io.Writer handlers write to. It turns the handler's
// line ends into CRLF: LF, CRLF and a run of CRs with or without an LF
// after it each become one CRLF, so no lone CR reaches the wire. It
// buffers up to replyBufSize bytes; Flush sends what is buffered.
type replyWriter struct {
	w      io.Writer
	buf    []byte
	bp     *[]byte // buf's home in replyBufs
	cr     bool    // a run of CRs was seen; its line end is not written yet
	lastLF bool    // the last byte written ended a line
	wrote  bool    // the handler wrote at least one byte
	err    error
}

func (w *replyWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.buf == nil {
		w.bp = replyBufs.Get().(*[]byte)
		w.buf = (*w.bp)[:0]
	}
	w.wrote = true
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\r':
			w.cr = true
			i++
			continue
		case c == '\n':
			w.cr = false
			w.buf = append(w.buf, '\r', '\n')
			w.lastLF = true
			i++
		default:
			if w.cr {
				w.cr = false
				w.buf = append(w.buf, '\r', '\n')
			}
			// Copy a run of ordinary bytes at once, up to the buffer's end.
			run := p[i:min(len(p), i+cap(w.buf)-len(w.buf))]
			if k := bytes.IndexByte(run, '\n'); k >= 0 {
				run = run[:k]
			}
			if k := bytes.IndexByte(run, '\r'); k >= 0 {
				run = run[:k]
			}
			j := i + max(len(run), 1) // p[i] even with no room left: append grows buf
			w.buf = append(w.buf, p[i:j]...)
			w.lastLF = false
			i = j
		}
		if len(w.buf) >= replyBufSize-1 {
			if err := w.Flush(); err != nil {
				return 0, err
			}
		}
	}
	return len(p), nil
}

// Flush writes the buffered reply to the connection. Handlers that relay
// a slow source (forwarding) may call it through an interface assertion
// on the writer they were given.
func (w *replyWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// replyBufs holds reply buffers between connections: a connection takes
// one when its handler first writes and gives it back when it is done.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, replyBufSize); return &b }}

// errReplyDone is what a handler's writes return once it has returned.
var errReplyDone = errors.New("finger: reply written after the handler returned")

// release gives the buffer back once the handler has returned; later
// writes fail.
func (w *replyWriter) release() {
	if w.bp != nil && cap(w.buf) <= 2*replyBufSize {
		*w.bp = w.buf[:0]
		replyBufs.Put(w.bp)
	}
	w.bp, w.buf = nil, nil
	if w.err == nil {
		w.err = errReplyDone
	}
}

// finish ends a non-empty reply with a line end and flushes it.
func (w *replyWriter) finish() error {
	if w.err != nil {
		return w.err
	}
	if w.cr || (w.wrote && !w.lastLF) {
		w.buf = append(w.buf, '\r', '\n')
	}
	return w.Flush()
}

// Shutdown stops the server gracefully: it closes the listeners at once,
// so that new connections are refused, then waits for active connections
// to finish, and returns nil as soon as they have. When ctx is done first,
// it closes the remaining connections, ends their handlers' contexts and
// returns ctx's error without waiting for handlers that ignore their
// context.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	defer s.quietLog.close()
	defer s.pressureLog.close()
	defer s.refusedLog.close()
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.closeConns()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, and ends the
// handlers' contexts. It does not wait for handlers to return. It returns
// the error from closing the listeners.
func (s *Server) Close() error {
	err := s.closeListeners()
	s.closeConns()
	s.pressureLog.close()
	s.quietLog.close()
	s.refusedLog.close()
	return err
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inShutdown.Store(true)
	var err error
	for l := range s.listeners {
		if cerr := (*l).Close(); cerr != nil && err == nil {
			err = cerr
		}
		delete(s.listeners, l)
	}
	return err
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forceCtx()
	s.forceClose()
	for c, cancel := range s.conns {
		if cancel != nil {
			cancel()
		}
		c.Close()
	}
}

// lingerClose closes c after an error answer without resetting the
// connection: it half-closes, then reads and drops what the client still
// sends (at most lingerBytes, for at most lingerTimeout), so the error
// line is not lost to a TCP reset caused by unread input. It returns as
// soon as the client closes its side.
func lingerClose(c net.Conn) {
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, io.LimitReader(c, lingerBytes))
}

// escapeLog escapes line for a log record: the body of its Go quoted form,
// which keeps printable text (UTF-8 included) and escapes everything else.
func escapeLog(line string) string {
	q := strconv.Quote(line)
	return q[1 : len(q)-1]
}

// lineBufs holds query line buffers between connections, so that an idle
// connection holds none.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, DefaultMaxQueryBytes+1); return &b }}

// preRead is the start of a query that readNow read: the bytes in bp's
// first n, and the read's error.
type preRead struct {
	bp  *[]byte
	n   int
	err error
}

// lineBuf returns bp's buffer sized for a line of at most max bytes.
func lineBuf(bp *[]byte, max int) []byte {
	if cap(*bp) < max+1 {
		*bp = make([]byte, 0, max+1)
	}
	return (*bp)[:max+1]
}

// readLine reads one query line from c with ReadQuery's rules (at most max
// bytes, line end included; LF ends it, as does EOF after some bytes;
// the line end is removed), reading in blocks rather than byte by byte,
// from what readNow read (pre) when not nil. The caller has waited for c
// to become readable (waitReadable) or read its start (readNow), so that
// no buffer is held while the client is silent.
func readLine(c net.Conn, max int, pre *preRead) (string, error) {
	var bp *[]byte
	var m int
	var err error
	if pre != nil {
		bp, m, err = pre.bp, pre.n, pre.err
	} else {
		bp = lineBufs.Get().(*[]byte)
	}
	defer lineBufs.Put(bp)
	buf := lineBuf(bp, max)
	if pre == nil {
		m, err = c.Read(buf)
	}
	n := 0
	for {
		if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
			end := n + i
			if end+1 > max {
				return "", ErrQueryTooLong
			}
			return strings.TrimRight(string(buf[:end]), "\r"), nil
		}
		if n += m; n > max {
			return "", ErrQueryTooLong
		}
		if err != nil {
			if err == io.EOF {
				if n == 0 {
					return "", io.EOF
				}
				return strings.TrimRight(string(buf[:n]), "\r"), nil
			}
			return "", err
		}
		m, err = c.Read(buf[n:])
	}
}
