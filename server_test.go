package finger_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/fingertest"
)

// writeHandler writes reply as is.
func writeHandler(reply string) finger.Handler {
	return finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		io.WriteString(w, reply)
	})
}

// echoHandler describes the parsed query.
var echoHandler = finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
	var b strings.Builder
	if r.Query.Verbose {
		b.WriteString("verbose ")
	}
	b.WriteString("user=" + r.Query.User)
	for _, h := range r.Query.Hosts {
		b.WriteString(" host=" + h)
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
})

func TestServerLineEnds(t *testing.T) {
	tests := []struct {
		name, reply, want string
	}{
		{"LF", "a\nb\n", "a\r\nb\r\n"},
		{"CRLF", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"lone CR", "a\rb\r", "a\r\nb\r\n"},
		{"CR CR LF", "a\r\r\nb", "a\r\nb\r\n"},
		{"CR run", "a\r\r\rb", "a\r\nb\r\n"},
		{"no final line end", "a\nno end", "a\r\nno end\r\n"},
		{"empty lines", "\n\n", "\r\n\r\n"},
		{"empty reply", "", ""},
		{"UTF-8 kept", "张伟\n", "张伟\r\n"},
		{"long line", strings.Repeat("x", 10000) + "\r", strings.Repeat("x", 10000) + "\r\n"},
		{"lines across the buffer's edges", strings.Repeat("0123456789abcdef\n", 600) + strings.Repeat("x\ry\r\n", 900) + "z",
			strings.Repeat("0123456789abcdef\r\n", 600) + strings.Repeat("x\r\ny\r\n", 900) + "z\r\n"},
	}
	for _, tt := range tests {
		got := string(fingertest.Exchange(t, writeHandler(tt.reply), []byte("alice\r\n")))
		if got != tt.want {
			t.Errorf("%s: reply %q on the wire as %q, want %q", tt.name, tt.reply, got, tt.want)
		}
	}
}

// TestServerWriteAfterReturn: a handler that keeps its writer and writes
// after returning gets an error, and the buffer its reply used serves the
// next replies intact.
func TestServerWriteAfterReturn(t *testing.T) {
	leaked := make(chan io.Writer, 1)
	h := finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		io.WriteString(w, "first\n")
		leaked <- w
	})
	if got := string(fingertest.Exchange(t, h, []byte("alice\r\n"))); got != "first\r\n" {
		t.Fatalf("reply %q, want %q", got, "first\r\n")
	}
	w := <-leaked
	if n, err := io.WriteString(w, "late\n"); err == nil {
		t.Errorf("a write after the handler returned = %d, nil; want an error", n)
	}
	for i := range 3 {
		want := fmt.Sprintf("reply %d\r\n", i)
		if got := string(fingertest.Exchange(t, writeHandler(fmt.Sprintf("reply %d\n", i)), []byte("bob\r\n"))); got != want {
			t.Errorf("next reply %q, want %q", got, want)
		}
		io.WriteString(w, "late\n")
	}
}

// TestServerLineEndsSplit writes the reply one byte at a time, so that a
// CR and its LF arrive in separate writes and cross buffer edges.
func TestServerLineEndsSplit(t *testing.T) {
	reply := strings.Repeat("line\r\r\n", 1000) + "end\r"
	want := strings.Repeat("line\r\n", 1000) + "end\r\n"
	h := finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		for i := 0; i < len(reply); i++ {
			w.Write([]byte{reply[i]})
		}
	})
	if got := string(fingertest.Exchange(t, h, []byte("x\n"))); got != want {
		t.Errorf("byte-wise reply on the wire differs: %d bytes, want %d", len(got), len(want))
	}
}

func TestServerQueries(t *testing.T) {
	long := strings.Repeat("a", finger.DefaultMaxQueryBytes)
	tests := []struct {
		name, request, want string
	}{
		{"CRLF", "alice\r\n", "user=alice\r\n"},
		{"bare LF", "alice\n", "user=alice\r\n"},
		{"CR CR LF", "alice\r\r\n", "user=alice\r\n"},
		{"half-close, no line end", "alice", "user=alice\r\n"},
		{"list", "\r\n", "user=\r\n"},
		{"verbose", "/W alice\r\n", "verbose user=alice\r\n"},
		{"forward", "alice@h1@h2\r\n", "user=alice host=h1 host=h2\r\n"},
		{"only the first line", "alice\r\nbob\r\n", "user=alice\r\n"},
		{"at the cap", long[:finger.DefaultMaxQueryBytes-2] + "\r\n", "user=" + long[:finger.DefaultMaxQueryBytes-2] + "\r\n"},
		{"one over the cap", long[:finger.DefaultMaxQueryBytes-1] + "\r\n", "finger: query too long\r\n"},
		{"far over the cap", strings.Repeat("A", 10240) + "\r\n", "finger: query too long\r\n"},
		{"NUL", "\x00alice\r\n", "finger: invalid query\r\n"},
		{"ESC", "alice\x1b[2J\r\n", "finger: invalid query\r\n"},
		{"Telnet", "\xff\xfb\x01\xff\xfd\x03alice\r\n", "finger: invalid query\r\n"},
		{"/Wfoo", "/Walice\r\n", "finger: invalid query\r\n"},
		{"nothing sent", "", ""},
	}
	for _, tt := range tests {
		if got := string(fingertest.Exchange(t, echoHandler, []byte(tt.request))); got != tt.want {
			t.Errorf("%s: query %q answered %q, want %q", tt.name, tt.request, got, tt.want)
		}
	}
}

func TestServerZeroValue(t *testing.T) {
	var srv finger.Server
	srv.Logger = fingertest.Logger(t)
	got := string(fingertest.ExchangeServer(t, &srv, []byte("alice\r\n")))
	if want := "finger: no such user.\r\n"; got != want {
		t.Errorf("zero Server answered %q, want %q", got, want)
	}
}

func TestServerRequest(t *testing.T) {
	var got *finger.Request
	h := finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) { got = r })
	fingertest.Exchange(t, h, []byte("/w  alice \r\n"))
	if got == nil {
		t.Fatal("handler not called")
	}
	if got.Line != "/w  alice " || got.Query.User != "alice" || !got.Query.Verbose {
		t.Errorf("Request = Line %q Query %+v, want Line %q, verbose alice", got.Line, got.Query, "/w  alice ")
	}
	if got.RemoteAddr.String() != "192.0.2.1:1079" || got.LocalAddr.String() != "192.0.2.79:79" {
		t.Errorf("Request addresses = %v, %v", got.RemoteAddr, got.LocalAddr)
	}
}

// logBuffer collects a JSON slog handler's output.
type logBuffer struct{ fingertest.Buffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records decodes every record; each must be one line of JSON.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not one JSON record: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestServerLogRecord(t *testing.T) {
	tests := []struct {
		request string
		query   string // logged query field
		kind    string
		outcome string
		level   string
	}{
		{"alice\r\n", `alice`, "user", finger.OutcomeOK, "INFO"},
		{"\r\n", ``, "list", finger.OutcomeOK, "INFO"},
		{"a@h\r\n", `a@h`, "forward", finger.OutcomeOK, "INFO"},
		{"alice\x1b[2J\r\n", `alice\x1b[2J`, "", finger.OutcomeInvalid, "WARN"},
		{"a\rforged outcome=ok\r\n", `a\rforged outcome=ok`, "", finger.OutcomeInvalid, "WARN"},
		{"张伟\u2028x\r\n", `张伟\u2028x`, "user", finger.OutcomeOK, "INFO"},
		{"bad\xfe\r\n", `bad\xfe`, "user", finger.OutcomeOK, "INFO"},
		{strings.Repeat("a", 600), "", "", finger.OutcomeTooLong, "WARN"},
		// Connections without a query come in floods: Debug records,
		// counted in an Info record (TestServerQuietLog).
		{"", "", "", finger.OutcomeNoQuery, "DEBUG"},
	}
	for _, tt := range tests {
		var lb logBuffer
		var observed []finger.Record
		srv := &finger.Server{
			Handler: writeHandler("hi\n"),
			Logger:  lb.logger(),
			Observe: func(r finger.Record) { observed = append(observed, r) },
		}
		reply := fingertest.ExchangeServer(t, srv, []byte(tt.request))
		var recs []map[string]any
		for _, r := range lb.records(t) {
			if r["msg"] == "finger query" {
				recs = append(recs, r)
			}
		}
		if len(recs) != 1 {
			t.Errorf("query %q: %d log records, want 1", tt.request, len(recs))
			continue
		}
		r := recs[0]
		for k, want := range map[string]any{
			"msg":     "finger query",
			"level":   tt.level,
			"remote":  "192.0.2.1:1079",
			"query":   tt.query,
			"kind":    tt.kind,
			"outcome": tt.outcome,
			"bytes":   float64(len(reply)),
		} {
			if r[k] != want {
				t.Errorf("query %q: log field %s = %#v, want %#v", tt.request, k, r[k], want)
			}
		}
		for _, k := range []string{"time", "start", "duration"} {
			if _, ok := r[k]; !ok {
				t.Errorf("query %q: log record has no %q field: %v", tt.request, k, r)
			}
		}
		if len(observed) != 1 || observed[0].Outcome != tt.outcome || observed[0].Query != tt.query ||
			observed[0].Bytes != int64(len(reply)) || observed[0].Time.IsZero() {
			t.Errorf("query %q: Observe got %+v, want one record with outcome %q", tt.request, observed, tt.outcome)
		}
	}
}

// TestServerLogText checks that a query cannot forge a line of a text
// log either.
func TestServerLogText(t *testing.T) {
	var buf logBuffer
	srv := &finger.Server{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	fingertest.ExchangeServer(t, srv, []byte("x\rlevel=INFO msg=forged\r\n"))
	fingertest.ExchangeServer(t, srv, []byte("y\x85level=INFO msg=forged\r\n"))
	text := buf.String()
	if n := strings.Count(text, "\n"); n != 2 {
		t.Errorf("text log has %d lines for 2 connections:\n%s", n, text)
	}
	// The query is escaped by the server, Go-style, before the handler
	// sees it: the line holds a backslash and an r (quoted again by the
	// text handler), never the control byte, whatever the handler does.
	for _, want := range []string{`query="x\\rlevel=INFO msg=forged"`, `query="y\\x85level=INFO msg=forged"`} {
		if !strings.Contains(text, want) {
			t.Errorf("text log lacks %s:\n%s", want, text)
		}
	}
	// A JSON handler unquotes its strings: the record still holds the
	// escape, not the byte.
	var jbuf logBuffer
	srv.Logger = slog.New(slog.NewJSONHandler(&jbuf, nil))
	fingertest.ExchangeServer(t, srv, []byte("x\rlevel=INFO msg=forged\x1b[2J\r\n"))
	var rec struct{ Query string }
	if err := json.Unmarshal([]byte(jbuf.String()), &rec); err != nil {
		t.Fatalf("JSON log %q: %v", jbuf.String(), err)
	}
	if want := `x\rlevel=INFO msg=forged\x1b[2J`; rec.Query != want {
		t.Errorf("logged query = %q, want %q", rec.Query, want)
	}
}

func TestServerPanic(t *testing.T) {
	var lb logBuffer
	h := finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		switch r.Query.User {
		case "early":
			io.WriteString(w, "partial, buffered\n")
			panic("boom early")
		case "late":
			io.WriteString(w, strings.Repeat("x", 10000))
			panic("boom late")
		}
		io.WriteString(w, "fine\n")
	})
	s := fingertest.NewUnstartedServer(t, h)
	s.Config.Logger = lb.logger()
	s.Start()

	if got, want := string(s.Query("early\r\n")), "finger: internal error\r\n"; got != want {
		t.Errorf("panic before any output: reply %q, want %q", got, want)
	}
	if got := s.Query("late\r\n"); len(got) < 4096 || len(got) >= 10000 || bytes.Contains(got, []byte("internal error")) {
		t.Errorf("panic after output: reply of %d bytes, want the part already sent only", len(got))
	}
	if got, want := string(s.Query("other\r\n")), "fine\r\n"; got != want {
		t.Errorf("after panics: reply %q, want %q", got, want)
	}
	s.Close() // the records are complete once the connections are done
	recs := lb.records(t)
	if len(recs) != 3 {
		t.Fatalf("%d log records, want 3", len(recs))
	}
	// A record is logged once its connection is closed, so the records
	// of consecutive connections may come in any order: find each by its
	// query.
	byQuery := map[any]map[string]any{}
	for _, r := range recs {
		byQuery[r["query"]] = r
	}
	for q, want := range map[string]string{"early": "boom early", "late": "boom late"} {
		r := byQuery[q]
		if r["level"] != "ERROR" || r["outcome"] != finger.OutcomePanic || r["panic"] != want {
			t.Errorf("record of %q = %v, want an ERROR panic record for %q", q, r, want)
		}
		if st, _ := r["stack"].(string); !strings.Contains(st, "server_test.go") {
			t.Errorf("record of %q: stack does not show the handler:\n%s", q, st)
		}
	}
	if r := byQuery["other"]; r["outcome"] != finger.OutcomeOK {
		t.Errorf("record of \"other\" = %v, want outcome %q", r, finger.OutcomeOK)
	}
}

func TestServerAdmit(t *testing.T) {
	srv := &finger.Server{
		Handler: echoHandler,
		Logger:  fingertest.Logger(t),
		Admit: func(remote net.Addr) error {
			return errors.New("finger: go away\r\nforged")
		},
	}
	if got, want := string(fingertest.ExchangeServer(t, srv, []byte("alice\r\n"))), "finger: go away  forged\r\n"; got != want {
		t.Errorf("refused by Admit: reply %q, want %q", got, want)
	}
}

// blockingHandler blocks queries for "hold" until release is closed or
// the context ends, and reports each start on started.
type blockingHandler struct {
	started chan string
	release chan struct{}
}

func newBlockingHandler() *blockingHandler {
	return &blockingHandler{started: make(chan string, 100), release: make(chan struct{})}
}

func (h *blockingHandler) ServeFinger(ctx context.Context, w io.Writer, r *finger.Request) {
	h.started <- r.Query.User
	if r.Query.User == "hold" {
		select {
		case <-h.release:
		case <-ctx.Done():
			return
		}
	}
	io.WriteString(w, "done "+r.Query.User+"\n")
}

// dialFrom connects to addr from local IP from, sends request and returns
// the connection.
func dialFrom(t *testing.T, from, addr, request string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	return c
}

func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("reading reply: %v (after %q)", err, b)
	}
	return string(b)
}

// nextRecord returns the next record the server's Observe hook sends on
// records; the bound is against a hang only.
func nextRecord(t *testing.T, records <-chan finger.Record) finger.Record {
	t.Helper()
	select {
	case r := <-records:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no record within a minute")
		return finger.Record{}
	}
}

// wantReset fails the test unless c's peer reset it with nothing before.
func wantReset(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) > 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%s: read %q, %v; want a reset with nothing before", what, b, err)
	}
}

func TestServerMaxConns(t *testing.T) {
	h := newBlockingHandler()
	s := fingertest.NewUnstartedServer(t, h)
	s.Config.MaxConns = 1
	s.Start()

	held := dialFrom(t, "127.0.0.1", s.Addr, "hold\r\n")
	<-h.started
	for i := 0; i < 3; i++ {
		c := dialFrom(t, "127.0.0.1", s.Addr, "alice\r\n")
		if got, want := readAll(t, c), "finger: too many connections\r\n"; got != want {
			t.Errorf("over MaxConns: reply %q, want %q", got, want)
		}
	}
	close(h.release)
	if got, want := readAll(t, held), "done hold\r\n"; got != want {
		t.Errorf("held connection: reply %q, want %q", got, want)
	}
	// The slot is free again once the held connection is closed.
	waitFor(t, func() bool {
		return s.Query("alice\r\n") != nil && string(s.Query("alice\r\n")) == "done alice\r\n"
	})
}

func TestServerMaxConnsPerIP(t *testing.T) {
	h := newBlockingHandler()
	s := fingertest.NewUnstartedServer(t, h)
	s.Config.MaxConnsPerIP = 1
	s.Start()

	held := dialFrom(t, "127.0.0.1", s.Addr, "hold\r\n")
	<-h.started
	c := dialFrom(t, "127.0.0.1", s.Addr, "alice\r\n")
	if got, want := readAll(t, c), "finger: too many connections\r\n"; got != want {
		t.Errorf("second connection from 127.0.0.1: reply %q, want %q", got, want)
	}
	c = dialFrom(t, "127.0.0.2", s.Addr, "bob\r\n")
	if got, want := readAll(t, c), "done bob\r\n"; got != want {
		t.Errorf("connection from 127.0.0.2: reply %q, want %q", got, want)
	}
	close(h.release)
	readAll(t, held)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerHalfClose(t *testing.T) {
	s := fingertest.NewServer(t, echoHandler)
	c := dialFrom(t, "127.0.0.1", s.Addr, "alice")
	c.(*net.TCPConn).CloseWrite()
	if got, want := readAll(t, c), "user=alice\r\n"; got != want {
		t.Errorf("half-closed query without line end: reply %q, want %q", got, want)
	}
}

// TestServerErrorCleanClose checks that error answers end with a FIN, not
// a reset, even when the client keeps sending, and that the client gets
// the answer at once while the server drains.
func TestServerErrorCleanClose(t *testing.T) {
	s := fingertest.NewServer(t, echoHandler)
	tests := []struct {
		name, request, want string
	}{
		{"invalid", "\x00alice\r\n", "finger: invalid query\r\n"},
		{"10 KiB", strings.Repeat("A", 10<<10) + "\r\n", "finger: query too long\r\n"},
		{"1 MiB", strings.Repeat("A", 1<<20) + "\r\n", "finger: query too long\r\n"},
	}
	for _, tt := range tests {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		go io.WriteString(c, tt.request) // may fail once the server closes
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if line != tt.want || err != nil {
			t.Errorf("%s: reply %q, %v, want %q", tt.name, line, err, tt.want)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Errorf("%s: after the reply: %v, want EOF", tt.name, err)
		}
		c.Close()
	}
}

// TestServerErrorAnswerAtOnce: the error answer and the end of the reply
// reach the client at once, not after the server has drained its input;
// and Close does not wait for a lingering connection. In a synctest
// bubble, so "at once" means no time passes, however loaded the machine.
func TestServerErrorAnswerAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &finger.Server{Handler: echoHandler, Logger: fingertest.Logger(t)}
		for _, closeServer := range []bool{false, true} {
			client, server := fingertest.Pipe()
			served := make(chan struct{})
			go func() { srv.ServeConn(context.Background(), server); close(served) }()
			go client.Write([]byte("\x00alice\r\n")) // the client does not close
			start := time.Now()
			r := bufio.NewReader(client)
			line, err := r.ReadString('\n')
			if line != "finger: invalid query\r\n" || err != nil {
				t.Errorf("reply %q, %v, want the invalid query answer", line, err)
			}
			if _, err := r.ReadByte(); err != io.EOF {
				t.Errorf("after the reply: %v, want EOF", err)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("answer and EOF after %v, want at once", d)
			}
			if closeServer {
				start = time.Now()
				srv.Close()
				<-served
				if d := time.Since(start); d != 0 {
					t.Errorf("Close took %v with a lingering connection, want no wait", d)
				}
			} else {
				<-served // the drain ends with its time limit
			}
			client.Close()
		}
	})
}

// TestServerBusyNoReset checks the refusal over a cap reaches a client
// that sent its query before reading.
func TestServerBusyNoReset(t *testing.T) {
	h := newBlockingHandler()
	s := fingertest.NewUnstartedServer(t, h)
	s.Config.MaxConns = 1
	s.Start()
	dialFrom(t, "127.0.0.1", s.Addr, "hold\r\n")
	<-h.started
	c := dialFrom(t, "127.0.0.1", s.Addr, strings.Repeat("x", 4000)+"\r\n")
	if got, want := readAll(t, c), "finger: too many connections\r\n"; got != want {
		t.Errorf("over the cap with a query sent: reply %q, want %q", got, want)
	}
	close(h.release)
}

func TestServerSlowClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &finger.Server{Handler: echoHandler, Logger: fingertest.Logger(t), ReadTimeout: 5 * time.Second}
		client, server := fingertest.Pipe()
		served := make(chan struct{})
		go func() { srv.ServeConn(context.Background(), server); close(served) }()
		// The record is logged after the close the client sees: wait for it
		// before the test ends.
		defer func() { <-served }()
		// One byte a second: the query is complete before the read
		// timeout.
		for _, c := range []byte("bob\n") {
			time.Sleep(time.Second)
			client.Write([]byte{c})
		}
		if got, want := readPipe(t, client), "user=bob\r\n"; got != want {
			t.Errorf("slow query: reply %q, want %q", got, want)
		}

		// One byte every two seconds: the read timeout counts from the
		// start, so trickling bytes do not extend it.
		client, server = fingertest.Pipe()
		start := time.Now()
		served2 := make(chan struct{})
		go func() { srv.ServeConn(context.Background(), server); close(served2) }()
		defer func() { <-served2 }()
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			for _, c := range []byte("alice\n") {
				time.Sleep(2 * time.Second)
				if _, err := client.Write([]byte{c}); err != nil {
					return
				}
			}
		})
		if got, want := readPipe(t, client), "finger: input timeout\r\n"; got != want {
			t.Errorf("trickling query: reply %q, want %q", got, want)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("trickling query cut off after %v, want 5s", d)
		}
	})
}

func TestServerIdleClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &finger.Server{Handler: echoHandler, Logger: fingertest.Logger(t)}
		client, server := fingertest.Pipe()
		start := time.Now()
		served := make(chan struct{})
		go func() { srv.ServeConn(context.Background(), server); close(served) }()
		// The record is logged after the close the client sees: wait for it
		// before the test ends.
		defer func() { <-served }()
		if got, want := readPipe(t, client), "finger: input timeout\r\n"; got != want {
			t.Errorf("idle client: reply %q, want %q", got, want)
		}
		if d := time.Since(start); d != finger.DefaultReadTimeout {
			t.Errorf("idle client cut off after %v, want %v", d, finger.DefaultReadTimeout)
		}
	})
}

// TestServerQueryOverTCP: over TCP the server reads a query that has
// arrived at once, without waiting first; a query arriving in pieces, one
// ended by EOF, none at all, or one too long is still read as ReadQuery
// says.
func TestServerQueryOverTCP(t *testing.T) {
	long := strings.Repeat("a", finger.DefaultMaxQueryBytes+10) + "\r\n"
	tests := []struct {
		name    string
		pieces  []string // written in turn, 50 ms apart
		halfEnd bool     // close the sending side after the pieces
		want    string
		outcome string
	}{
		{"whole", []string{"alice\r\n"}, false, "user=alice\r\n", finger.OutcomeOK},
		{"verbose", []string{"/W alice\r\n"}, false, "verbose user=alice\r\n", finger.OutcomeOK},
		{"in pieces", []string{"ali", "ce", "\r\n"}, false, "user=alice\r\n", finger.OutcomeOK},
		{"ended by EOF", []string{"alice"}, true, "user=alice\r\n", finger.OutcomeOK},
		{"nothing", nil, true, "", finger.OutcomeNoQuery},
		{"too long", []string{long}, false, "finger: query too long\r\n", finger.OutcomeTooLong},
		{"too long in pieces", []string{long[:300], long[300:]}, false, "finger: query too long\r\n", finger.OutcomeTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records := make(chan finger.Record, 1)
			s := fingertest.NewUnstartedServer(t, echoHandler)
			s.Config.Observe = func(r finger.Record) { records <- r }
			s.Start()
			c := dialFrom(t, "127.0.0.1", s.Addr, "")
			for i, p := range tt.pieces {
				if i > 0 {
					time.Sleep(50 * time.Millisecond)
				}
				if _, err := io.WriteString(c, p); err != nil {
					t.Fatal(err)
				}
			}
			if tt.halfEnd {
				c.(*net.TCPConn).CloseWrite()
			}
			if got := readAll(t, c); got != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
			if r := nextRecord(t, records); r.Outcome != tt.outcome {
				t.Errorf("outcome %q, want %q", r.Outcome, tt.outcome)
			}
		})
	}
}

// TestServerReadErrorTCP: a client that resets its connection before its
// query is recorded as a read error, and the log names the read and the
// connection as c.Read's error would.
func TestServerReadErrorTCP(t *testing.T) {
	var lb logBuffer
	records := make(chan finger.Record, 1)
	s := fingertest.NewUnstartedServer(t, echoHandler)
	s.Config.Logger = lb.logger()
	s.Config.Observe = func(r finger.Record) { records <- r }
	s.Start()
	c := dialFrom(t, "127.0.0.1", s.Addr, "")
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	if r := nextRecord(t, records); r.Outcome != finger.OutcomeReadErr {
		t.Fatalf("outcome %q, want %q", r.Outcome, finger.OutcomeReadErr)
	}
	for _, r := range lb.records(t) {
		if r["outcome"] == finger.OutcomeReadErr {
			if e, _ := r["err"].(string); !strings.HasPrefix(e, "read tcp ") || !strings.Contains(e, "connection reset by peer") {
				t.Errorf("err %q, want c.Read's form: read tcp ADDR->ADDR: read: connection reset by peer", e)
			}
			return
		}
	}
	t.Errorf("no read-error record in the log:\n%s", lb.String())
}

// TestServerIdleClientTCP: on a real connection, the idle client's line
// arrives whole, followed by a clean end of the connection (readAll fails
// on a reset). An evicted client is reset instead
// (TestServerEvictsSilentConnections).
func TestServerIdleClientTCP(t *testing.T) {
	s := fingertest.NewUnstartedServer(t, echoHandler)
	s.Config.ReadTimeout = time.Second
	s.Start()
	silent := dialFrom(t, "127.0.0.1", s.Addr, "")
	partial := dialFrom(t, "127.0.0.1", s.Addr, "ali")
	for _, c := range []net.Conn{silent, partial} {
		if got, want := readAll(t, c), "finger: input timeout\r\n"; got != want {
			t.Errorf("idle client: reply %q, want %q", got, want)
		}
	}
}

// TestServerQuietLog: idle connections that time out or that their client
// closes without a query come in floods too: each is a Debug record, and
// one Info record at most a minute counts them (the first at once, the
// rest at the minute's end or at Close). Every answered query keeps its
// own Info record.
func TestServerQuietLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lb logBuffer
		srv := &finger.Server{
			Handler:     writeHandler("hi\n"),
			ReadTimeout: 5 * time.Second,
			Logger:      slog.New(slog.NewJSONHandler(&lb, nil)), // Info and above
		}
		exchange := func(request string, closeAfter bool) string {
			client, server := fingertest.Pipe()
			go srv.ServeConn(context.Background(), server)
			if request != "" {
				io.WriteString(client, request)
			}
			if closeAfter {
				client.Close()
				synctest.Wait()
				return ""
			}
			reply := readPipe(t, client)
			synctest.Wait() // finished and logged
			return reply
		}
		counts := func() (recs []map[string]any) {
			for _, r := range lb.records(t) {
				if strings.Contains(r["msg"].(string), "closed without a query") {
					recs = append(recs, r)
				}
			}
			return recs
		}

		exchange("", true) // closed by its client: no query
		if got := counts(); len(got) != 1 || got[0]["level"] != "INFO" || got[0]["no_query"] != float64(1) || got[0]["timed_out"] != float64(0) {
			t.Errorf("after the first connection without a query: count records %v, want one at once, INFO, no_query=1 timed_out=0", got)
		}
		const n = 3
		for i := 0; i < n; i++ {
			if got, want := exchange("", false), "finger: input timeout\r\n"; got != want {
				t.Errorf("idle connection %d: reply %q, want %q", i, got, want)
			}
			exchange("", true)
			if got, want := exchange("alice\r\n", false), "hi\r\n"; got != want {
				t.Errorf("query %d: reply %q, want %q", i, got, want)
			}
		}
		if got := counts(); len(got) != 1 {
			t.Errorf("within the minute: %d count records, want 1", len(got))
		}
		srv.Close()
		got := counts()
		if len(got) != 2 || got[1]["timed_out"] != float64(n) || got[1]["no_query"] != float64(n) {
			t.Errorf("after Close: count records %v, want a second with timed_out=%d no_query=%d", got, n, n)
		}
		var answered int
		for _, r := range lb.records(t) {
			if r["msg"] != "finger query" {
				continue
			}
			if r["outcome"] != finger.OutcomeOK || r["level"] != "INFO" {
				t.Errorf("record %v at Info level, want only the answered queries'", r)
			}
			answered++
		}
		if answered != n {
			t.Errorf("%d records of answered queries, want %d", answered, n)
		}
	})
}

// TestServerRefusedLog: refusals by Admit (fingerd's rate limit) come one
// per connection of a client over its rate: each is a Debug record, and
// one Warn record at most a minute counts them (the first at once, the
// rest at the minute's end or at Close).
func TestServerRefusedLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lb logBuffer
		srv := &finger.Server{
			Handler: writeHandler("hi\n"),
			Logger:  slog.New(slog.NewJSONHandler(&lb, nil)), // Info and above
			Admit: func(net.Addr) error {
				return errors.New("finger: rate limit exceeded")
			},
		}
		refuse := func() {
			if got, want := string(fingertest.ExchangeServer(t, srv, []byte("alice\r\n"))), "finger: rate limit exceeded\r\n"; got != want {
				t.Errorf("refused connection: reply %q, want %q", got, want)
			}
			synctest.Wait() // finished and logged
		}
		counts := func() (recs []map[string]any) {
			for _, r := range lb.records(t) {
				if strings.Contains(r["msg"].(string), "refused by the admission policy") {
					recs = append(recs, r)
				}
			}
			return recs
		}
		refuse()
		if got := counts(); len(got) != 1 || got[0]["level"] != "WARN" || got[0]["refused"] != float64(1) {
			t.Errorf("after the first refusal: count records %v, want one at once, WARN, refused=1", got)
		}
		const n = 5
		for range n {
			refuse()
		}
		if got := counts(); len(got) != 1 {
			t.Errorf("within the minute: %d count records, want 1", len(got))
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := counts(); len(got) != 2 || got[1]["refused"] != float64(n) {
			t.Errorf("at the minute's end: count records %v, want a second with refused=%d", got, n)
		}
		refuse()
		srv.Close()
		if got := counts(); len(got) != 3 || got[2]["refused"] != float64(1) {
			t.Errorf("after Close: count records %v, want a third with refused=1", got)
		}
		for _, r := range lb.records(t) {
			if r["msg"] == "finger query" {
				t.Errorf("record %v at Info level or above for a refused connection", r)
			}
		}
	})
}

// TestServerStalledReader checks the write timeout: a client that never
// reads cannot hold the connection.
func TestServerStalledReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lb logBuffer
		srv := &finger.Server{
			Handler:      writeHandler(strings.Repeat("x", 100000)),
			Logger:       lb.logger(),
			WriteTimeout: 3 * time.Second,
		}
		client, server := fingertest.Pipe()
		defer client.Close()
		go io.WriteString(client, "x\n")
		start := time.Now()
		err := srv.ServeConn(context.Background(), server)
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Errorf("ServeConn to a stalled reader = %v after %v, want a deadline error after 3s", err, time.Since(start))
		}
		if recs := lb.records(t); len(recs) != 1 || recs[0]["outcome"] != finger.OutcomeWriteErr {
			t.Errorf("log records %v, want one with outcome %q", recs, finger.OutcomeWriteErr)
		}
	})
}

// TestServerConnTimeout checks that the handler's context ends at the
// connection's total deadline.
func TestServerConnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lb logBuffer
		var ctxErr error
		srv := &finger.Server{
			Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
				<-ctx.Done()
				ctxErr = ctx.Err()
				io.WriteString(w, "too late\n")
			}),
			Logger:      lb.logger(),
			ConnTimeout: 7 * time.Second,
		}
		client, server := fingertest.Pipe()
		start := time.Now()
		go func() {
			io.WriteString(client, "x\n")
		}()
		srv.ServeConn(context.Background(), server)
		if d := time.Since(start); d != 7*time.Second || !errors.Is(ctxErr, context.DeadlineExceeded) {
			t.Errorf("handler context ended after %v with %v, want 7s, %v", d, ctxErr, context.DeadlineExceeded)
		}
		if got := readPipe(t, client); got != "" {
			t.Errorf("reply after the connection timeout: %q, want none", got)
		}
		if recs := lb.records(t); len(recs) != 1 || recs[0]["outcome"] != finger.OutcomeTimeout {
			t.Errorf("log records %v, want one with outcome %q", recs, finger.OutcomeTimeout)
		}
	})
}

func readPipe(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("reading reply: %v", err)
	}
	return string(b)
}

func TestServerShutdownWaits(t *testing.T) {
	h := newBlockingHandler()
	s := fingertest.NewServer(t, h)
	held := dialFrom(t, "127.0.0.1", s.Addr, "hold\r\n")
	<-h.started

	shut := make(chan error, 1)
	go func() { shut <- s.Config.Shutdown(context.Background()) }()
	// New connections are refused once the listener is closed.
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with an active connection", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.release)
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(10 * time.Second): // against a hang only
		t.Fatal("Shutdown did not return once the connection finished")
	}
	if got, want := readAll(t, held), "done hold\r\n"; got != want {
		t.Errorf("connection active during Shutdown: reply %q, want %q", got, want)
	}
	if err := s.Config.Serve(newListener(t)); !errors.Is(err, finger.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want %v", err, finger.ErrServerClosed)
	}
	_, server := fingertest.Pipe()
	if err := s.Config.ServeConn(context.Background(), server); !errors.Is(err, finger.ErrServerClosed) {
		t.Errorf("ServeConn after Shutdown = %v, want %v", err, finger.ErrServerClosed)
	}
}

// TestServeAccepted: a connection the caller accepted is served like one
// Serve accepts, Shutdown waits for it, and once Shutdown has begun it is
// refused and left open, so that the caller can hand it to another server.
func TestServeAccepted(t *testing.T) {
	h := newBlockingHandler()
	srv := &finger.Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
	client, server := fingertest.TCPPair(t)
	if !srv.ServeAccepted(server) {
		t.Fatal("ServeAccepted = false on a running server")
	}
	io.WriteString(client, "hold\r\n")
	<-h.started
	// Serve returns once Shutdown has begun (it closes Serve's listener).
	served := make(chan error, 1)
	go func() { served <- srv.Serve(newListener(t)) }()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if err := <-served; !errors.Is(err, finger.ErrServerClosed) {
		t.Fatalf("Serve = %v, want %v", err, finger.ErrServerClosed)
	}
	late, lateServer := fingertest.TCPPair(t)
	if srv.ServeAccepted(lateServer) {
		t.Fatal("ServeAccepted = true after Shutdown began")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while an accepted connection was served", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.release)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if got, want := readAll(t, client), "done hold\r\n"; got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	// The refused connection is still open: the caller owns it.
	io.WriteString(lateServer, "still open\n")
	late.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	if n, err := late.Read(buf); err != nil || string(buf[:n]) != "still open\n" {
		t.Errorf("the refused connection: read %q, %v; want it open", buf[:n], err)
	}
	lateServer.Close()
}

func newListener(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestServerShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newBlockingHandler()
		srv := &finger.Server{Handler: h, Logger: fingertest.Logger(t)}
		client, server := fingertest.Pipe()
		served := make(chan error, 1)
		go func() { served <- srv.ServeConn(context.Background(), server) }()
		io.WriteString(client, "hold\n")
		<-h.started

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Shutdown returned after %v, want 2s", d)
		}
		<-served // the handler saw its context end
		if got := readPipe(t, client); got != "" {
			t.Errorf("force-closed connection got %q, want nothing", got)
		}
	})
}

func TestServerClose(t *testing.T) {
	h := newBlockingHandler()
	s := fingertest.NewServer(t, h)
	held := dialFrom(t, "127.0.0.1", s.Addr, "hold\r\n")
	<-h.started
	start := time.Now()
	s.Close()                                       // closes, then waits for the handler to see its context end
	if d := time.Since(start); d > 10*time.Second { // against a hang only
		t.Errorf("Close took %v", d)
	}
	if got := readAll(t, held); got != "" {
		t.Errorf("connection closed by Close got %q, want nothing", got)
	}
}

// tempErr is a temporary accept error.
type tempErr struct{}

func (tempErr) Error() string   { return "temporary" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

// flakyListener fails Accept with n temporary errors, then with a
// permanent one.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	n     int
	calls []time.Time
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, time.Now())
	if len(l.calls) <= l.n {
		return nil, tempErr{}
	}
	return nil, syscall.EINVAL
}

func TestServerAcceptBackoff(t *testing.T) {
	var lb logBuffer
	l := &flakyListener{Listener: newListener(t), n: 4}
	srv := &finger.Server{Logger: lb.logger()}
	if err := srv.Serve(l); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Serve = %v, want %v", err, syscall.EINVAL)
	}
	// Delays 5, 10, 20 and 40ms between the five calls.
	for i := 1; i < len(l.calls); i++ {
		want := 5 * time.Millisecond << (i - 1)
		if d := l.calls[i].Sub(l.calls[i-1]); d < want {
			t.Errorf("Accept call %d after %v, want at least %v", i, d, want)
		}
	}
	if n := len(lb.records(t)); n != 4 {
		t.Errorf("%d log records for 4 accept errors, want 4", n)
	}
}

func TestServerNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	s := fingertest.NewServer(t, echoHandler)
	requests := []string{"alice\r\n", "\x00\r\n", strings.Repeat("a", 600), "", "/W\r\n", "a@b\r\n"}
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			io.WriteString(c, requests[i%len(requests)])
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c)
		}()
	}
	wg.Wait()
	s.Close()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= base })
}

func BenchmarkServerExchange(b *testing.B) {
	srv := &finger.Server{Handler: writeHandler("Login: alice\t\t\tName: Alice Liddell\nPlan:\nTea.\n"), Logger: slog.New(slog.DiscardHandler)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	addr := l.Addr().String()
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, "/W alice\r\n")
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
	}
}

// TestServeConnContextEndsWait: ServeConn's context cuts off a client that
// has not sent its query, on a real socket (where the server waits for the
// query without a buffer), long before the read timeout.
func TestServeConnContextEndsWait(t *testing.T) {
	_, c := fingertest.TCPPair(t)
	srv := &finger.Server{ReadTimeout: time.Hour, Handler: writeHandler("hi\n"), Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(ctx, c) }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("ServeConn = nil, want an error for a connection cut off before its query")
		}
	case <-time.After(30 * time.Second): // the read timeout is an hour
		t.Fatal("ServeConn did not return when its context ended")
	}
}

// TestServerMaxConnsPerIPv6Prefix: the per-client cap counts an IPv6 /64 as
// one client, so that a client cannot pass it by using more addresses of
// its own network.
func TestServerMaxConnsPerIPv6Prefix(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{})
	srv := &finger.Server{MaxConnsPerIP: 1, Logger: slog.New(slog.DiscardHandler),
		Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
			if r.Query.User == "alice" {
				close(held)
				<-release
			}
			io.WriteString(w, "served\n")
		})}
	defer close(release)
	pipe := func(remote string) net.Conn {
		a, b := net.Pipe()
		ra := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(remote))
		go srv.ServeConn(context.Background(), &addrConn{Conn: a, remote: ra})
		return b
	}
	first := pipe("[2001:db8:1:2::1]:1000")
	io.WriteString(first, "alice\r\n")
	<-held // the first connection is counted and held in the handler
	for _, tt := range []struct {
		remote string
		want   string
	}{
		{"[2001:db8:1:2::99]:1001", "finger: too many connections\r\n"}, // same /64
		{"[2001:db8:1:3::1]:1002", "served\r\n"},                        // another /64
		{"[::ffff:192.0.2.7]:1003", "served\r\n"},                       // IPv4 (mapped)
	} {
		c := pipe(tt.remote)
		c.SetDeadline(time.Now().Add(10 * time.Second)) // against a hang only
		go io.WriteString(c, "bob\r\n")                 // a refused client is not read from
		line, err := bufio.NewReader(c).ReadString('\n')
		if line != tt.want {
			t.Errorf("second connection from %s: first line %q (%v), want %q", tt.remote, line, err, tt.want)
		}
		c.Close()
	}
	first.Close()
}

// addrConn gives a pipe a remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// TestServerEvictsSilentConnections: at MaxConns, a new connection takes
// the place of the connection that has waited longest without sending its
// query; that one is reset (a TCP connection: no line, no FIN). A client
// that sends its query is served however many silent connections are held.
func TestServerEvictsSilentConnections(t *testing.T) {
	h := newBlockingHandler()
	s := fingertest.NewUnstartedServer(t, h)
	s.Config.MaxConns = 4
	s.Config.MaxConnsPerIP = -1
	// The Admit hook tells when a connection has its place: the test
	// opens the next one only then, so the age order is the dial order.
	admitted := make(chan struct{}, 100)
	s.Config.Admit = func(net.Addr) error { admitted <- struct{}{}; return nil }
	// Observe tells when a connection has given its place back.
	finished := make(chan struct{}, 100)
	s.Config.Observe = func(finger.Record) { finished <- struct{}{} }
	s.Start()
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing within 10s", what)
		}
	}
	started := make(chan struct{}, 100)
	go func() {
		for range h.started {
			started <- struct{}{}
		}
	}()
	open := func(from, request string) net.Conn {
		c := dialFrom(t, from, s.Addr, request)
		wait(admitted, "admission of a connection from "+from)
		return c
	}

	var silent []net.Conn
	for i := 0; i < 4; i++ {
		silent = append(silent, open("127.0.0.1", ""))
	}
	for i := 0; i < 3; i++ {
		c := open("127.0.0.2", "alice\r\n")
		if got, want := readAll(t, c), "done alice\r\n"; got != want {
			t.Errorf("client %d with 4 silent connections held: reply %q, want %q", i, got, want)
		}
		wait(started, "the handler's start")
		wantReset(t, silent[i], fmt.Sprintf("silent connection %d (oldest)", i))
		// Another silent connection fills the place again, once the
		// served client and the evicted one have given theirs back (the
		// clients see the close first).
		wait(finished, "the end of a connection")
		wait(finished, "the end of a connection")
		silent = append(silent, open("127.0.0.1", ""))
	}
	// The newer silent connections still hold their places, and are
	// served when they send their query.
	for _, c := range silent[3:] {
		io.WriteString(c, "bob\r\n")
		if got, want := readAll(t, c), "done bob\r\n"; got != want {
			t.Errorf("newer silent connection: reply %q, want %q", got, want)
		}
		wait(started, "the handler's start")
	}

	// Connections that have sent their query are never evicted: with
	// every place taken by one, a new connection is refused.
	// (A closed connection's place is freed just after the client sees
	// the close: a refused "hold" is tried again.)
	var held []chan string
	for len(held) < 4 {
		c := dialFrom(t, "127.0.0.3", s.Addr, "hold\r\n")
		reply := make(chan string, 1)
		go func() { reply <- readAll(t, c) }()
		select {
		case <-started:
			held = append(held, reply)
		case <-reply:
		}
	}
	c := dialFrom(t, "127.0.0.2", s.Addr, "alice\r\n")
	if got, want := readAll(t, c), "finger: too many connections\r\n"; got != want {
		t.Errorf("with every place serving a query: reply %q, want %q", got, want)
	}
	close(h.release)
	for i, reply := range held {
		if got, want := <-reply, "done hold\r\n"; got != want {
			t.Errorf("held connection %d: reply %q, want %q", i, got, want)
		}
	}
}

// TestServerMaxConnsPerNet: one IPv6 /48 holds at most MaxConnsPerNet
// connections; at the cap its own oldest silent connection makes room, and
// other networks are not affected.
func TestServerMaxConnsPerNet(t *testing.T) {
	// The Admit hook tells when a connection has its place: the next one
	// is opened only then, so the age order is the opening order.
	admitted := make(chan struct{}, 10)
	srv := &finger.Server{MaxConnsPerNet: 2, Logger: slog.New(slog.DiscardHandler), Handler: echoHandler,
		Admit: func(net.Addr) error { admitted <- struct{}{}; return nil }}
	pipe := func(remote string) net.Conn {
		a, b := net.Pipe()
		ra := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(remote))
		go srv.ServeConn(context.Background(), &addrConn{Conn: a, remote: ra})
		t.Cleanup(func() { b.Close() })
		b.SetDeadline(time.Now().Add(10 * time.Second))
		select {
		case <-admitted:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection from %s not admitted within 10s", remote)
		}
		return b
	}
	line := func(c net.Conn) string {
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l
	}
	first := pipe("[2001:db8:79:1::1]:1000")
	second := pipe("[2001:db8:79:2::1]:1000")
	other := pipe("[2001:db8:80:1::1]:1000") // another /48

	third := pipe("[2001:db8:79:3::1]:1000")
	go io.WriteString(third, "alice\r\n")
	if got, want := line(third), "user=alice\r\n"; got != want {
		t.Errorf("third /64 of a full /48: reply %q, want %q", got, want)
	}
	if got, want := line(first), "finger: server busy\r\n"; got != want {
		t.Errorf("oldest silent connection of the /48: reply %q, want %q", got, want)
	}
	go io.WriteString(second, "bob\r\n")
	if got, want := line(second), "user=bob\r\n"; got != want {
		t.Errorf("second silent connection of the /48: reply %q, want %q", got, want)
	}
	go io.WriteString(other, "carol\r\n")
	if got, want := line(other), "user=carol\r\n"; got != want {
		t.Errorf("connection of another /48: reply %q, want %q", got, want)
	}
}

// headerConn is a finger.HeaderConn whose header is one line naming the
// client's address; reading is closed when the server starts reading the
// header, which it does once the connection has its place.
type headerConn struct {
	net.Conn
	remote  net.Addr
	reading chan struct{}
	r       *bufio.Reader
}

func (c *headerConn) RemoteAddr() net.Addr { return c.remote }
func (c *headerConn) Read(p []byte) (int, error) {
	if c.r != nil {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}
func (c *headerConn) ReadHeader() (net.Addr, error) {
	close(c.reading)
	c.r = bufio.NewReader(c.Conn)
	l, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(l))
	if err != nil {
		return nil, err
	}
	c.remote = net.TCPAddrFromAddrPort(ap)
	return c.remote, nil
}

// TestServerHeaderConn: a connection whose client comes in a header counts
// against MaxConns before anything is read, can be evicted while its
// header has not come, and its client is held to the per-client cap.
func TestServerHeaderConn(t *testing.T) {
	release, holding := make(chan struct{}), make(chan struct{})
	srv := &finger.Server{MaxConns: 2, MaxConnsPerIP: 1, Logger: slog.New(slog.DiscardHandler),
		Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
			if r.Query.User == "hold" {
				close(holding)
				<-release
			}
			io.WriteString(w, "user="+r.Query.User+" from "+r.RemoteAddr.String()+"\n")
		})}
	defer close(release)
	balancer := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:5000"))
	open := func() (*headerConn, net.Conn) {
		a, b := net.Pipe()
		hc := &headerConn{Conn: a, remote: balancer, reading: make(chan struct{})}
		go srv.ServeConn(context.Background(), hc)
		t.Cleanup(func() { b.Close() })
		b.SetDeadline(time.Now().Add(10 * time.Second))
		// The next connection is opened once this one has its place, so
		// the age order is the opening order.
		select {
		case <-hc.reading:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not start reading a header within 10s")
		}
		return hc, b
	}
	line := func(c net.Conn) string {
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l
	}
	_, silent1 := open()
	_, silent2 := open()

	// Both places are taken by connections whose header has not come: a
	// third evicts the oldest.
	_, c := open()
	go io.WriteString(c, "198.51.100.7:4000\nhold\r\n")
	if got, want := line(silent1), "finger: server busy\r\n"; got != want {
		t.Errorf("oldest connection without a header: reply %q, want %q", got, want)
	}
	// The per-client cap applies to the header's address.
	<-holding
	_, d := open()
	go io.WriteString(d, "198.51.100.7:4001\nalice\r\n")
	if got, want := line(silent2), "finger: server busy\r\n"; got != want {
		t.Errorf("second connection without a header: reply %q, want %q", got, want)
	}
	if got, want := line(d), "finger: too many connections\r\n"; got != want {
		t.Errorf("second connection of 198.51.100.7: reply %q, want %q", got, want)
	}
	_, e := open()
	go io.WriteString(e, "198.51.100.8:4000\nbob\r\n")
	if got, want := line(e), "user=bob from 198.51.100.8:4000\r\n"; got != want {
		t.Errorf("connection of 198.51.100.8: reply %q, want %q", got, want)
	}
}

// TestServerPressureLog: refusals by the caps come in floods; each is a
// Debug record, and one Warn record at most a minute counts them, so that
// a flood does not flood the log.
// TestServerPressureLogMinute: the evictions and refusals that follow the
// first within a minute are counted in one Warn record at the minute's
// end, or at Close, each also logged at Debug level.
func TestServerPressureLogMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lb logBuffer
		h := newBlockingHandler()
		srv := &finger.Server{Handler: h, MaxConns: 1, MaxConnsPerIP: -1, Logger: lb.logger()}
		serve := func() *fingertest.PipeConn {
			client, server := fingertest.Pipe()
			go srv.ServeConn(context.Background(), server)
			synctest.Wait() // admitted, or refused
			return client
		}
		reply := func(c *fingertest.PipeConn) string {
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			c.Close()
			synctest.Wait() // finished and logged
			return string(b)
		}
		pressure := func() (recs []map[string]any) {
			for _, r := range lb.records(t) {
				if r["level"] == "WARN" && strings.Contains(r["msg"].(string), "under connection pressure") {
					recs = append(recs, r)
				}
			}
			return recs
		}

		silent := serve()
		held := serve() // evicts the silent connection
		if got, want := reply(silent), "finger: server busy\r\n"; got != want {
			t.Errorf("silent connection: reply %q, want %q", got, want)
		}
		go held.Write([]byte("hold\r\n"))
		<-h.started
		const n = 3
		for i := 0; i < n; i++ {
			if got, want := reply(serve()), "finger: too many connections\r\n"; got != want {
				t.Errorf("connection %d over the cap: reply %q, want %q", i, got, want)
			}
		}
		recs := pressure()
		if len(recs) != 1 || recs[0]["evicted"] != float64(1) || recs[0]["refused"] != float64(0) {
			t.Fatalf("pressure records after an eviction and %d refusals = %v, want one with evicted=1 refused=0", n, recs)
		}
		close(h.release)
		if got, want := reply(held), "done hold\r\n"; got != want {
			t.Errorf("held connection: reply %q, want %q", got, want)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		recs = pressure()
		if len(recs) != 2 || recs[1]["evicted"] != float64(0) || recs[1]["refused"] != float64(n) {
			t.Errorf("pressure records a minute later = %v, want a second one with evicted=0 refused=%d", recs, n)
		}
		debug := 0
		for _, r := range lb.records(t) {
			if r["level"] == "DEBUG" && (r["outcome"] == finger.OutcomeBusy || r["outcome"] == finger.OutcomeEvicted) {
				debug++
			}
		}
		if debug != n+1 {
			t.Errorf("%d Debug records of evictions and refusals, want %d", debug, n+1)
		}

		// An eviction within the next minute is counted in a record due
		// at its end; Close writes it at once.
		silent = serve()
		newer := serve()
		if got, want := reply(silent), "finger: server busy\r\n"; got != want {
			t.Errorf("silent connection: reply %q, want %q", got, want)
		}
		if recs := pressure(); len(recs) != 2 {
			t.Errorf("pressure records within the minute = %v, want still 2", recs)
		}
		srv.Close()
		synctest.Wait()
		recs = pressure()
		if len(recs) != 3 || recs[2]["evicted"] != float64(1) || recs[2]["refused"] != float64(0) {
			t.Errorf("pressure records at Close = %v, want a third one with evicted=1 refused=0", recs)
		}
		reply(newer)
	})
}

func TestServerPressureLog(t *testing.T) {
	var lb logBuffer
	h := newBlockingHandler()
	s := fingertest.NewUnstartedServer(t, h)
	s.Config.MaxConnsPerIP = 1
	s.Config.Logger = lb.logger()
	s.Start()
	held := dialFrom(t, "127.0.0.1", s.Addr, "hold\r\n")
	<-h.started
	const n = 5
	for i := 0; i < n; i++ {
		c := dialFrom(t, "127.0.0.1", s.Addr, "alice\r\n")
		if got, want := readAll(t, c), "finger: too many connections\r\n"; got != want {
			t.Errorf("connection %d over the cap: reply %q, want %q", i, got, want)
		}
		c.Close() // ends the server's lingering close
	}
	close(h.release)
	readAll(t, held)
	var debug, warn int
	waitFor(t, func() bool {
		debug, warn = 0, 0
		for _, r := range lb.records(t) {
			switch {
			case r["level"] == "DEBUG" && r["outcome"] == finger.OutcomeBusy:
				debug++
			case r["level"] == "WARN":
				warn++
				if r["refused"] != float64(1) {
					t.Errorf("first pressure record = %v, want refused=1", r)
				}
			}
		}
		return debug == n
	})
	if warn != 1 {
		t.Errorf("%d Warn records for %d refusals within a minute, want 1", warn, n)
	}
}
