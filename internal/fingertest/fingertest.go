// Package fingertest provides utilities for finger testing, in the manner
// of net/http/httptest: a Server listening on a loopback port, and
// Exchange, which runs one query through a handler over net.Pipe. For
// tests that run the commands as processes, Build builds one and
// StartProcess runs it, collecting its output.
package fingertest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger"
)

// A Server is a finger server listening on 127.0.0.1 on a system-chosen
// port, for tests.
type Server struct {
	// Addr is the address the server listens on, "127.0.0.1:port".
	Addr string
	// Config is the server. Its fields may be changed between NewUnstartedServer
	// and Start, not after.
	Config *finger.Server

	t        testing.TB
	l        net.Listener
	serveErr chan error
	once     sync.Once
}

// NewServer starts a server with handler h on 127.0.0.1 and returns it.
// It logs to t (see Logger) and is closed when the test ends; Close may
// be called earlier.
func NewServer(t testing.TB, h finger.Handler) *Server {
	t.Helper()
	s := NewUnstartedServer(t, h)
	s.Start()
	return s
}

// NewUnstartedServer returns a server listening on 127.0.0.1 that does not
// accept connections yet, so that the caller can change s.Config; Start
// starts it.
func NewUnstartedServer(t testing.TB, h finger.Handler) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fingertest: listen: %v", err)
	}
	s := &Server{
		Addr:   l.Addr().String(),
		Config: &finger.Server{Handler: h, Logger: Logger(t)},
		t:      t,
		l:      l,
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts serving.
func (s *Server) Start() {
	if s.serveErr != nil {
		s.t.Fatalf("fingertest: Server started twice")
	}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.Config.Serve(s.l) }()
}

// Close closes the server and its connections, and waits for Serve and
// the connections' goroutines to return (for at most closeWait). It
// reports an error to the test if Serve failed for any reason other than
// the close, or if a handler ignores its context.
func (s *Server) Close() {
	s.once.Do(func() {
		s.Config.Close()
		if s.serveErr == nil {
			s.l.Close()
			return
		}
		if err := <-s.serveErr; !errors.Is(err, finger.ErrServerClosed) {
			s.t.Errorf("fingertest: Serve returned %v, want %v", err, finger.ErrServerClosed)
		}
		ctx, cancel := context.WithTimeout(context.Background(), closeWait)
		defer cancel()
		if err := s.Config.Shutdown(ctx); err != nil {
			s.t.Errorf("fingertest: connections still served %v after Close", closeWait)
		}
	})
}

// closeWait bounds how long Close waits for handlers to return.
const closeWait = 5 * time.Second

// Query sends request (the raw bytes of the query line, line end
// included) to the server, half-closes, and returns everything the server
// sent until it closed.
func (s *Server) Query(request string) []byte {
	s.t.Helper()
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		s.t.Fatalf("fingertest: dial %s: %v", s.Addr, err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, request); err != nil {
		s.t.Fatalf("fingertest: write: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		s.t.Fatalf("fingertest: read: %v", err)
	}
	return reply
}

// Exchange serves one connection with handler h over net.Pipe, with the
// server's defaults: it writes request (the raw query bytes), closes the
// client's writing side, and returns the reply. The server logs to t.
func Exchange(t testing.TB, h finger.Handler, request []byte) (reply []byte) {
	t.Helper()
	return ExchangeServer(t, &finger.Server{Handler: h, Logger: Logger(t)}, request)
}

// ExchangeServer is Exchange with a configured server; srv.ServeConn
// serves the connection.
func ExchangeServer(t testing.TB, srv *finger.Server, request []byte) (reply []byte) {
	t.Helper()
	client, server := Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), server) }()
	go func() {
		client.Write(request)
		client.CloseWrite()
	}()
	reply, err := io.ReadAll(client)
	client.Close()
	if err != nil {
		t.Fatalf("fingertest: read reply: %v", err)
	}
	<-done
	return reply
}

// PipeConn is the client end of Pipe: a net.Conn that can also
// half-close.
type PipeConn struct {
	net.Conn
}

// Pipe returns a connected pair of in-memory connections, like net.Pipe,
// whose client end can half-close: after client.CloseWrite, reads on
// server return io.EOF while the server can still write its reply.
// Deadlines work on both ends, also inside a testing/synctest bubble.
//
// The server end reports RemoteAddr 192.0.2.1:1079 and LocalAddr
// 192.0.2.79:79 (a documentation address), so that per-address caps and
// logs see an IP address.
func Pipe() (client *PipeConn, server net.Conn) {
	c1, s1 := net.Pipe() // client → server
	c2, s2 := net.Pipe() // server → client
	client = &PipeConn{Conn: &pipeHalves{r: c2, w: c1, local: pipeAddr{"192.0.2.1:1079"}, remote: pipeAddr{"192.0.2.79:79"}}}
	server = &pipeHalves{r: s1, w: s2, local: pipeAddr{"192.0.2.79:79"}, remote: pipeAddr{"192.0.2.1:1079"}}
	return client, server
}

// CloseWrite closes the client's writing side: the server reads io.EOF.
func (c *PipeConn) CloseWrite() error {
	return c.Conn.(*pipeHalves).w.Close()
}

// pipeHalves joins two net.Pipe ends, one for each direction.
type pipeHalves struct {
	r, w          net.Conn
	local, remote net.Addr
}

func (p *pipeHalves) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *pipeHalves) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *pipeHalves) Close() error {
	err := p.r.Close()
	if werr := p.w.Close(); err == nil {
		err = werr
	}
	return err
}

// CloseWrite closes the writing direction only.
func (p *pipeHalves) CloseWrite() error { return p.w.Close() }

func (p *pipeHalves) LocalAddr() net.Addr  { return p.local }
func (p *pipeHalves) RemoteAddr() net.Addr { return p.remote }

func (p *pipeHalves) SetDeadline(t time.Time) error {
	p.r.SetDeadline(t)
	return p.w.SetDeadline(t)
}

func (p *pipeHalves) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *pipeHalves) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }

type pipeAddr struct{ s string }

func (a pipeAddr) Network() string { return "tcp" }
func (a pipeAddr) String() string  { return a.s }

// Logger returns a logger that writes each record to t.Log as text, so
// that a server's records appear with the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TCPPair returns the two ends of a TCP connection on the loopback
// interface, for tests that need a real socket (deadlines, descriptors).
// Both are closed when the test ends.
func TCPPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
