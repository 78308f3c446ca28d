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
	DefaultReadTimeout   = 10 * time.Second
	DefaultWriteTimeout  = 30 * time.Second
	DefaultConnTimeout   = 60 * time.Second
	DefaultMaxConns      = 512
	DefaultMaxConnsPerIP = 16
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
	// negative means no cap. A connection over the cap gets one line,
	// "finger: too many connections", and is closed.
	MaxConns int
	// MaxConnsPerIP caps connections at once from one client: one IPv4
	// address, or one IPv6 /64 (IPv4-mapped IPv6 addresses count as IPv4;
	// the PROXY protocol's client address when there is one): 0 means
	// DefaultMaxConnsPerIP, negative means no cap. Over the cap, the answer
	// is the same as for MaxConns.
	MaxConnsPerIP int

	// Admit, if set, is called for each connection that passed the caps,
	// before the query is read. A non-nil error refuses the connection:
	// its text (control bytes replaced by spaces) is sent as one line and
	// the connection closed.
	Admit func(remote net.Addr) error

	// Logger receives one record per connection: at Info level when the
	// query was answered, Warn for refusals and errors, Error for panics
	// (with the panic value and stack). nil means slog.Default().
	Logger *slog.Logger
	// Observe, if set, is called with each connection's record after it
	// is logged (for metrics). It runs on the connection's goroutine.
	Observe func(Record)

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[net.Conn]struct{} // every connection not yet closed
	active     int                   // connections within the caps
	perIP      map[string]int
	rejecting  int
	inShutdown atomic.Bool
	force      context.Context // done at Close or Shutdown's deadline
	forceClose context.CancelFunc
	wg         sync.WaitGroup // one per connection; Add only under mu before shutdown
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
		if !s.startConn(c) {
			c.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			s.serve(context.Background(), c)
		}()
	}
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
		s.conns = make(map[net.Conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) endConn(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// ipKey is the per-address key of a remote address: its IPv4 address, its
// IPv6 /64 (what one client usually holds whole), or the whole address for
// non-IP transports.
func ipKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return clientKey(ip)
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return clientKey(ap.Addr())
	}
	return a.String()
}

func clientKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Admission results.
const (
	admitted = iota
	overCap
	overCapSilent // over a cap while too many refusals are under way
)

// admit counts c against the caps.
func (s *Server) admit(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	max := intOr(s.MaxConns, DefaultMaxConns)
	maxIP := intOr(s.MaxConnsPerIP, DefaultMaxConnsPerIP)
	if max > 0 && s.active >= max || maxIP > 0 && s.perIP[key] >= maxIP {
		if s.rejecting >= maxRejecting {
			return overCapSilent
		}
		s.rejecting++
		return overCap
	}
	if s.perIP == nil {
		s.perIP = make(map[string]int)
	}
	s.active++
	s.perIP[key]++
	return admitted
}

func (s *Server) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.perIP[key]--; s.perIP[key] <= 0 {
		delete(s.perIP, key)
	}
}

func (s *Server) releaseReject() {
	s.mu.Lock()
	s.rejecting--
	s.mu.Unlock()
}

// serve runs one registered connection from admission to close. Its own
// frame is small: an admitted client that has not sent its query yet waits
// in waitReadable with a shallow stack, so that the runtime can shrink it.
func (s *Server) serve(ctx context.Context, c net.Conn) error {
	cs := &connState{s: s, c: c, ctx: ctx, start: time.Now()}
	if !cs.admit() {
		return cs.err
	}
	if ctx.Done() != nil {
		// ServeConn with a context that can end: end the wait and the
		// read with it.
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	return cs.serve(waitReadable(c))
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
	key    string // per-IP key
	// admission is the result of admit, for the release after close; -1
	// before admission.
	admission int
	linger    bool // close with lingerClose
	panicVal  any
	stack     []byte
	err       error
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
	switch cs.admission {
	case admitted:
		cs.s.release(cs.key)
	case overCap:
		cs.s.releaseReject()
	}
	cs.s.endConn(cs.c)
	cs.rec.Bytes = cs.cw.n
	cs.rec.Duration = time.Since(cs.start)
	cs.s.log(cs.ctx, &cs.rec, cs.err, cs.panicVal, cs.stack)
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

// admit counts the connection against the caps and asks the Admit hook. It
// reports false when the connection was refused, and then has finished it.
func (cs *connState) admit() (ok bool) {
	s, c := cs.s, cs.c
	cs.rec.Time = cs.start
	cs.admission = -1
	cs.cw = connWriter{c: c, timeout: durationOr(s.WriteTimeout, DefaultWriteTimeout)}
	defer func() {
		if !ok {
			cs.finish()
		}
	}()
	defer cs.recoverPanic()

	cs.remote = c.RemoteAddr() // with the PROXY protocol this reads the header
	if cs.remote != nil {
		cs.rec.Remote = cs.remote.String()
	}
	cs.key = ipKey(cs.remote)
	cs.admission = s.admit(cs.key)
	switch cs.admission {
	case overCapSilent:
		cs.rec.Outcome = OutcomeBusy
		cs.err = errors.New(msgTooMany)
		return false
	case overCap:
		cs.rec.Outcome = OutcomeBusy
		cs.cw.deadline = cs.start.Add(rejectTimeout)
		cs.cw.writeLine(msgTooMany)
		cs.linger = true
		cs.err = errors.New(msgTooMany)
		return false
	}
	if s.Admit != nil {
		if aerr := s.Admit(cs.remote); aerr != nil {
			cs.rec.Outcome = OutcomeRefused
			cs.cw.deadline = cs.start.Add(rejectTimeout)
			cs.cw.writeLine(oneLine(aerr.Error()))
			cs.linger = true
			cs.err = aerr
			return false
		}
	}

	// Until the query has arrived the connection holds no context, timer
	// or buffer of its own (an idle client costs little): deadlines bound
	// the wait, and Close closes the connection itself.
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
	return true
}

// serve reads the query (waitErr is the result of waiting for it to
// arrive), calls the handler and finishes the connection.
func (cs *connState) serve(waitErr error) error {
	s, c, ctx := cs.s, cs.c, cs.ctx
	defer cs.finish()
	rec, cw := &cs.rec, &cs.cw
	line, rerr := "", waitErr
	if rerr == nil {
		line, rerr = readLine(c, intOr(s.MaxQueryBytes, DefaultMaxQueryBytes))
	}
	if rerr != nil {
		switch {
		case ctx.Err() != nil:
			rec.Outcome = cutOff(ctx)
		case s.closing():
			rec.Outcome = OutcomeClosed
		case errors.Is(rerr, ErrQueryTooLong):
			rec.Outcome = OutcomeTooLong
			cw.writeLine(msgTooLong)
			cs.linger = true
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			rec.Outcome = OutcomeTimeout
			cw.writeLine(msgTimeout)
		case errors.Is(rerr, io.EOF):
			rec.Outcome = OutcomeNoQuery
		default:
			rec.Outcome = OutcomeReadErr
		}
		cs.err = rerr
		return rerr
	}

	// The handler's context: ServeConn's ctx, the total deadline, and the
	// server's force close. When it is done, pending reads and writes on
	// c fail at once.
	if !cw.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, cw.deadline)
		defer cancel()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.mu.Lock()
	force := s.forceCtx()
	s.mu.Unlock()
	stopForce := context.AfterFunc(force, func() { cancel(ErrServerClosed) })
	defer stopForce()
	stopDeadline := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stopDeadline()

	rec.Query = escapeLog(line)
	c.SetReadDeadline(time.Time{})
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
	case OutcomeOK, OutcomeNoQuery:
		level = slog.LevelInfo
	case OutcomePanic:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.Time("start", rec.Time),
		slog.String("remote", rec.Remote),
		slog.String("query", rec.Query),
		slog.String("kind", rec.Kind),
		slog.String("outcome", rec.Outcome),
		slog.Int64("bytes", rec.Bytes),
		slog.Duration("duration", rec.Duration),
	}
	if err != nil && rec.Outcome != OutcomeOK {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	if rec.Outcome == OutcomePanic {
		attrs = append(attrs, slog.String("panic", fmt.Sprint(panicVal)), slog.String("stack", string(stack)))
	}
	s.logger().LogAttrs(context.WithoutCancel(ctx), level, "finger query", attrs...)
	if s.Observe != nil {
		s.Observe(*rec)
	}
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
	cr     bool // a run of CRs was seen; its line end is not written yet
	lastLF bool // the last byte written ended a line
	wrote  bool // the handler wrote at least one byte
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
		w.buf = make([]byte, 0, replyBufSize)
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
			j := i + 1
			for j < len(p) && p[j] != '\r' && p[j] != '\n' && j-i < cap(w.buf)-len(w.buf) {
				j++
			}
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

// closing reports whether Close or a Shutdown deadline has closed the
// connections.
func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.force != nil && s.force.Err() != nil
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forceCtx()
	s.forceClose()
	for c := range s.conns {
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

// readLine reads one query line from c with ReadQuery's rules (at most max
// bytes, line end included; LF ends it, as does EOF after some bytes;
// the line end is removed), reading in blocks rather than byte by byte.
// The caller has waited for c to become readable (waitReadable), so that
// no buffer is held while the client is silent.
func readLine(c net.Conn, max int) (string, error) {
	bp := lineBufs.Get().(*[]byte)
	defer lineBufs.Put(bp)
	if cap(*bp) < max+1 {
		*bp = make([]byte, 0, max+1)
	}
	buf := (*bp)[:max+1]
	n := 0
	for {
		m, err := c.Read(buf[n:])
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
	}
}
