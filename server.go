package finger

import (
	"bufio"
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

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("finger: server closed")

// Outcomes of a connection, as logged and reported in Record.Outcome.
const (
	OutcomeOK       = "ok"       // the handler answered
	OutcomeInvalid  = "invalid"  // the query line was not valid
	OutcomeTooLong  = "too-long" // the query line passed the byte cap
	OutcomeTimeout  = "timeout"  // no complete query before the read timeout
	OutcomeBusy     = "busy"     // refused by a connection cap
	OutcomeRefused  = "refused"  // refused by the Admit hook
	OutcomePanic    = "panic"    // the handler panicked
	OutcomeWriteErr = "write-error"
	OutcomeReadErr  = "read-error"
)

// Texts the server itself sends. Each is one line.
const (
	msgInvalid  = "finger: invalid query"
	msgTooLong  = "finger: query too long"
	msgTimeout  = "finger: input timeout"
	msgTooMany  = "finger: too many connections"
	msgInternal = "finger: internal error"
)

// Record describes one connection's query and outcome; the server logs it
// and passes it to Server.Observe.
type Record struct {
	Time     time.Time // when the connection was accepted
	Remote   string    // client address ("ip:port")
	Query    string    // the query line, escaped (Go-quoted) so it cannot forge log lines
	Kind     string    // "list", "user", "forward", or "" when there was no valid query
	Outcome  string    // one of the Outcome constants
	Bytes    int64     // reply bytes written
	Duration time.Duration
}

// A Server serves finger queries. The zero value is ready to use and has
// safe limits: see each field for what zero and negative values mean.
type Server struct {
	// Addr is the address ListenAndServe listens on; "" means ":79".
	Addr string

	// Handler answers valid queries. nil answers every query with a
	// one-line "no such user" style refusal (see NotFoundHandler).
	Handler Handler

	// ReadTimeout bounds the time to receive the query line: 0 means
	// DefaultReadTimeout, negative means none.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write of the reply (a stalled reader is cut
	// off): 0 means DefaultWriteTimeout, negative means none.
	WriteTimeout time.Duration
	// ConnTimeout bounds the whole connection, query and reply: 0 means
	// DefaultConnTimeout, negative means none. The handler's context ends
	// then.
	ConnTimeout time.Duration
	// MaxQueryBytes caps the query line, line end included: 0 means
	// DefaultMaxQueryBytes.
	MaxQueryBytes int
	// MaxConns caps connections served at once: 0 means DefaultMaxConns,
	// negative means no cap. A connection over the cap gets one line,
	// "finger: too many connections", and is closed.
	MaxConns int
	// MaxConnsPerIP caps connections at once from one client IP address:
	// 0 means DefaultMaxConnsPerIP, negative means no cap.
	MaxConnsPerIP int

	// Admit, if set, is called for each connection that passed the caps,
	// before the query is read. A non-nil error refuses the connection:
	// its text is sent as one line and the connection closed.
	Admit func(remote net.Addr) error

	// Logger receives one record per connection at Info level (Warn for
	// refusals and errors, Error for panics). nil means slog.Default().
	Logger *slog.Logger
	// Observe, if set, is called with each connection's record, after it
	// is logged (for metrics).
	Observe func(Record)

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[net.Conn]struct{}
	perIP     map[string]int
	shutdown  atomic.Bool
	doneCh    chan struct{}
	wg        sync.WaitGroup
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

func (s *Server) done() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doneCh == nil {
		s.doneCh = make(chan struct{})
	}
	return s.doneCh
}

// ListenAndServe listens on s.Addr (":79" if empty) and calls Serve.
func (s *Server) ListenAndServe() error {
	if s.shutdown.Load() {
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
// error is ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&l, false)
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of descriptors or a similar passing fault: back off.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.logger().Warn("finger: accept error; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-s.done():
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(context.Background(), c)
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// ServeConn serves one query on c and closes it, with the same deadlines,
// caps and logging as Serve. It is what inetd mode uses, with c wrapping
// standard input and output. It returns an error describing a failed
// exchange (bad query, timeout, write error); the client has then been
// told what it needs to know.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	s.wg.Add(1)
	defer s.wg.Done()
	return s.serve(ctx, c)
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutdown.Load() {
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

// ipKey is the per-address key of a remote address: its IP, or the whole
// address for non-IP transports.
func ipKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap().String()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	return a.String()
}

// admit registers c, enforcing the caps. It returns false when c is over a
// cap (or the server is shutting down).
func (s *Server) admit(c net.Conn, key string) (ok bool, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false, true
	}
	if max := intOr(s.MaxConns, DefaultMaxConns); max > 0 && len(s.conns) >= max {
		return false, false
	}
	if max := intOr(s.MaxConnsPerIP, DefaultMaxConnsPerIP); max > 0 && s.perIP[key] >= max {
		return false, false
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
		s.perIP = make(map[string]int)
	}
	s.conns[c] = struct{}{}
	s.perIP[key]++
	return true, false
}

func (s *Server) release(c net.Conn, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.perIP[key]--; s.perIP[key] <= 0 {
		delete(s.perIP, key)
	}
}

// serve runs one connection from admission to close.
func (s *Server) serve(ctx context.Context, c net.Conn) (err error) {
	start := time.Now()
	rec := Record{Time: start}
	cw := &connWriter{c: c, timeout: durationOr(s.WriteTimeout, DefaultWriteTimeout)}
	defer func() {
		if rec.Outcome == OutcomeTooLong || rec.Outcome == OutcomeInvalid {
			lingerClose(c)
		} else {
			c.Close()
		}
		rec.Bytes = cw.n
		rec.Duration = time.Since(start)
		s.log(ctx, &rec, err)
	}()

	remote := c.RemoteAddr() // with the PROXY protocol this reads the header
	if remote != nil {
		rec.Remote = remote.String()
	}
	key := ipKey(remote)
	ok, closing := s.admit(c, key)
	if !ok {
		if closing {
			rec.Outcome = OutcomeBusy
			return ErrServerClosed
		}
		rec.Outcome = OutcomeBusy
		cw.deadline = start.Add(time.Second)
		cw.writeLine(msgTooMany)
		return errors.New(msgTooMany)
	}
	defer s.release(c, key)

	if s.Admit != nil {
		if aerr := s.Admit(remote); aerr != nil {
			rec.Outcome = OutcomeRefused
			cw.deadline = start.Add(time.Second)
			cw.writeLine(aerr.Error())
			return aerr
		}
	}

	if total := durationOr(s.ConnTimeout, DefaultConnTimeout); total > 0 {
		cw.deadline = start.Add(total)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, cw.deadline)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	go func() {
		select {
		case <-s.done():
			cancel()
		case <-ctx.Done():
		}
	}()

	// Read the query.
	if rt := durationOr(s.ReadTimeout, DefaultReadTimeout); rt > 0 {
		d := start.Add(rt)
		if !cw.deadline.IsZero() && cw.deadline.Before(d) {
			d = cw.deadline
		}
		c.SetReadDeadline(d)
	}
	line, rerr := ReadQuery(c, intOr(s.MaxQueryBytes, DefaultMaxQueryBytes))
	rec.Query = strconv.Quote(line)
	if rerr != nil {
		var ne net.Error
		switch {
		case errors.Is(rerr, ErrQueryTooLong):
			rec.Outcome = OutcomeTooLong
			cw.writeLine(msgTooLong)
		case errors.As(rerr, &ne) && ne.Timeout() || errors.Is(rerr, os.ErrDeadlineExceeded):
			rec.Outcome = OutcomeTimeout
			c.SetReadDeadline(time.Time{})
			cw.writeLine(msgTimeout)
		default:
			rec.Outcome = OutcomeReadErr
		}
		return rerr
	}
	c.SetReadDeadline(time.Time{})
	q, perr := ParseQuery(line)
	if perr != nil {
		rec.Outcome = OutcomeInvalid
		cw.writeLine(msgInvalid)
		return perr
	}
	rec.Kind = queryKind(q)

	h := s.Handler
	if h == nil {
		h = NotFoundHandler
	}
	req := &Request{Query: q, Line: line, RemoteAddr: remote, LocalAddr: c.LocalAddr()}
	rw := &replyWriter{bw: bufio.NewWriterSize(cw, 4096)}
	defer func() {
		if p := recover(); p != nil {
			rec.Outcome = OutcomePanic
			s.logger().Error("finger: handler panic", "remote", rec.Remote, "query", rec.Query,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("finger: handler panic: %v", p)
		}
	}()
	h.ServeFinger(ctx, rw, req)
	if werr := rw.finish(); werr != nil {
		rec.Outcome = OutcomeWriteErr
		return werr
	}
	rec.Outcome = OutcomeOK
	return nil
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

func (s *Server) log(ctx context.Context, rec *Record, err error) {
	level := slog.LevelInfo
	switch rec.Outcome {
	case OutcomeOK:
	case OutcomePanic:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
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

// replyWriter turns the handler's line ends into CRLF: LF, CRLF and a lone
// CR each become CRLF, and CR CR LF becomes one CRLF (as clients read it).
type replyWriter struct {
	bw      *bufio.Writer
	cr      bool // the last byte seen was a CR not yet written
	started bool
	lastLF  bool
	err     error
}

func (w *replyWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) > 0 {
		w.started = true
	}
	for i := 0; i < len(p); {
		c := p[i]
		if w.cr {
			switch c {
			case '\n':
				w.cr = false
				w.bw.WriteString("\r\n")
				w.lastLF = true
				i++
				continue
			case '\r':
				// CR CR: keep waiting for what follows the last CR.
				i++
				continue
			}
			w.cr = false
			w.bw.WriteString("\r\n")
		}
		// Copy a run of ordinary bytes in one call.
		j := i
		for j < len(p) && p[j] != '\r' && p[j] != '\n' {
			j++
		}
		if j > i {
			w.bw.Write(p[i:j])
			w.lastLF = false
			i = j
			continue
		}
		if c == '\n' {
			w.bw.WriteString("\r\n")
			w.lastLF = true
		} else {
			w.cr = true
		}
		i++
	}
	if err := w.bwErr(); err != nil {
		w.err = err
		return 0, err
	}
	return len(p), nil
}

func (w *replyWriter) bwErr() error {
	// bufio.Writer keeps its first error; Flush with nothing buffered
	// reports it without writing.
	if w.bw.Buffered() == 0 {
		return w.bw.Flush()
	}
	if w.bw.Available() == 0 {
		return w.bw.Flush()
	}
	return nil
}

// finish ends the reply with a line end and flushes it.
func (w *replyWriter) finish() error {
	if w.err != nil {
		return w.err
	}
	if w.cr || !w.lastLF {
		w.bw.WriteString("\r\n")
	}
	return w.bw.Flush()
}

// Shutdown stops the server gracefully: it closes the listeners at once,
// then waits for active connections to finish. When ctx is done first, it
// closes the remaining connections and returns ctx's error.
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
		<-finished
		return ctx.Err()
	}
}

// Close closes the listeners and every active connection at once.
func (s *Server) Close() error {
	err := s.closeListeners()
	s.closeConns()
	s.wg.Wait()
	return err
}

func (s *Server) closeListeners() error {
	done := s.done()
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = done // created before shutdown is set, so every serve sees it
	s.shutdown.Store(true)
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
	select {
	case <-s.doneCh:
	default:
		close(s.doneCh)
	}
	for c := range s.conns {
		c.Close()
	}
}

// lingerClose closes c after an error answer without resetting the
// connection: it half-closes, then reads and drops what the client still
// sends (at most 64 KiB, for at most a second), so the error line is not
// lost to a TCP reset caused by unread input.
func lingerClose(c net.Conn) {
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}
