//go:build linux

// Command fingerload is a load generator for finger servers: each worker
// connects, sends one query, reads the reply to EOF, and starts over. It
// prints throughput, latency percentiles and errors by kind. With -expect,
// a reply that does not match (an empty one included) is an error, so a
// server that answers nothing is never reported as fast.
//
// It can also hold many idle connections open from another source address
// (the slow-client mode), to measure what idle clients cost a server and
// whether fast clients keep their rate meanwhile.
//
// The flood mode (-hold) holds many idle connections spread over many
// source addresses, each address under a per-address count, and reopens
// each as the server closes it, at most -hold-rate times a second per
// address: the many-address flood a server must survive.
//
//	fingerload -addr 127.0.0.1:7979 -query alice -expect 'Login: alice' -c 8 -d 10s
//	fingerload -addr 127.0.0.1:7979 -idle 10000 -idle-from 127.0.0.2 -c 8 -d 10s
//	fingerload -addr 127.0.0.1:7979 -c 0 -d 60s -hold 5000 -hold-from 127.2.0.0/16 -hold-addrs 765
//
// Only loopback targets are accepted; source addresses are loopback ones,
// or unique-local IPv6 ones (fc00::/7) that a network namespace of the
// caller's own routes to its loopback interface.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/openfinger/finger/test/load/loadstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fingerload:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage error")

type config struct {
	addr        string
	query       string
	conc        int
	dur         time.Duration
	max         int64
	from        string // source addresses: a prefix such as 127.0.1.0/26, or one address
	idle        int
	idleFrom    string
	timeout     time.Duration
	expectBytes int
	expect      *regexp.Regexp // nil: any reply
	hold        int
	holdFrom    string
	holdAddrs   int
	holdRate    float64
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var c config
	fs := flag.NewFlagSet("fingerload", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:79", "server `host:port` (loopback only)")
	fs.StringVar(&c.query, "query", "", "query line to send, without line end (\"\" = {C})")
	fs.IntVar(&c.conc, "c", 8, "concurrent workers (0 with -idle: only hold the idle connections for -d)")
	fs.DurationVar(&c.dur, "d", 10*time.Second, "duration")
	fs.Int64Var(&c.max, "n", 0, "stop after this many requests (0 = no cap)")
	fs.StringVar(&c.from, "from", "", "source `prefix` to spread connections over, e.g. 127.0.1.0/26 (default: the kernel's choice)")
	fs.IntVar(&c.idle, "idle", 0, "idle connections to hold open during the run (slow clients)")
	fs.StringVar(&c.idleFrom, "idle-from", "127.0.0.2", "source `address` of the idle connections")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&c.expectBytes, "expect-bytes", 0, "count replies of a different size as errors (0 = any size)")
	expect := fs.String("expect", "", "`regexp` every reply must match; a reply that does not (an empty one included) counts as an error")
	fs.IntVar(&c.hold, "hold", 0, "idle connections to hold, spread over -hold-addrs source addresses and reopened as they close")
	fs.StringVar(&c.holdFrom, "hold-from", "127.2.0.0/16", "source `prefix` of the held connections (IPv6: one address per /64)")
	fs.IntVar(&c.holdAddrs, "hold-addrs", 100, "number of source addresses of the held connections")
	fs.Float64Var(&c.holdRate, "hold-rate", 1.6, "most connections a second one source address opens")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *expect != "" {
		re, err := regexp.Compile(*expect)
		if err != nil {
			return fmt.Errorf("%w: -expect: %v", errUsage, err)
		}
		c.expect = re
	}
	if c.conc < 0 || c.conc == 0 && c.idle == 0 && c.hold == 0 || c.dur <= 0 {
		return fmt.Errorf("%w: -c and -d must be positive (-c 0 only with -idle or -hold)", errUsage)
	}
	ap, err := netip.ParseAddrPort(c.addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("%w: -addr must be a loopback ip:port", errUsage)
	}
	var fl *flood
	stopReports := func() {}
	if c.hold > 0 {
		if fl, err = startFlood(ctx, c); err != nil {
			return err
		}
		defer fl.stop()
		stopReports = reportOnSignal(out, fl)
		defer stopReports()
		fmt.Fprintf(out, "hold: %d connections open from %d addresses of %s\n", fl.open.Load(), c.holdAddrs, c.holdFrom)
	}
	sources, err := sourceAddrs(c.from)
	if err != nil {
		return err
	}

	var idleConns []net.Conn
	if c.idle > 0 {
		idleConns, err = openIdle(ctx, c)
		defer func() {
			for _, ic := range idleConns {
				ic.Close()
			}
		}()
		fmt.Fprintf(out, "idle: %d connections open from %s (%v)\n", len(idleConns), c.idleFrom, err)
	}

	ctx, cancel := context.WithTimeout(ctx, c.dur)
	defer cancel()
	// The run is over at this deadline. Socket deadlines derived from it can
	// fire a little before the context's own timer marks it done, so the
	// loop also checks the clock: a dial that fails because the run ended is
	// not an error.
	deadline, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	var (
		count atomic.Int64
		bytes atomic.Int64
		mu    sync.Mutex
		lat   []time.Duration
		fails loadstat.Failures
		wg    sync.WaitGroup
	)
	req := []byte(c.query + "\r\n")
	start := time.Now()
	for w := 0; w < c.conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var local []time.Duration
			buf := make([]byte, 32<<10)
			var reply []byte // the whole reply, kept only with -expect
			keep := &reply
			if c.expect == nil {
				keep = nil
			}
			for i := 0; !over(); i++ {
				if c.max > 0 && count.Add(1) > c.max {
					break
				} else if c.max == 0 {
					count.Add(1)
				}
				var src net.Addr
				if len(sources) > 0 {
					src = &net.TCPAddr{IP: sources[(w+i*c.conc)%len(sources)].AsSlice()}
				}
				t0 := time.Now()
				n, err := exchange(ctx, c.addr, src, req, buf, keep, c.timeout)
				if err == nil && c.expectBytes > 0 && n != int64(c.expectBytes) {
					err = fmt.Errorf("size %d", n)
				}
				if err == nil && c.expect != nil && !c.expect.Match(reply) {
					err = &unexpectedError{reply: reply}
				}
				if err != nil {
					if over() {
						break
					}
					fails.Add(errKind(err), fmt.Sprintf("%v after %v", err, time.Since(t0).Round(time.Millisecond)))
					continue
				}
				bytes.Add(n)
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	if c.conc == 0 {
		<-ctx.Done()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopReports()

	slices.Sort(lat)
	kinds, nerr := fails.Kinds()
	fmt.Fprintf(out, "requests: %d ok, %d errors in %.2fs\n", len(lat), nerr, elapsed.Seconds())
	fmt.Fprintf(out, "rate: %.0f req/s\n", float64(len(lat))/elapsed.Seconds())
	fmt.Fprintf(out, "bytes: %d (%.1f MB/s)\n", bytes.Load(), float64(bytes.Load())/elapsed.Seconds()/1e6)
	pct := func(p float64) time.Duration { return loadstat.Percentile(lat, p).Round(time.Microsecond) }
	fmt.Fprintf(out, "latency: p50 %v p99 %v max %v\n", pct(.5), pct(.99), pct(1))
	for _, k := range kinds {
		fmt.Fprintf(out, "error %s: %d (e.g. %s)\n", k.Name, k.Count, k.Example)
	}
	if fl != nil {
		fmt.Fprintf(out, "hold: %d open at the end, %d opened in all, %d evicted (reset or server busy), %d refused (too many connections), %d timed out, %d other ends, %d dial errors\n",
			fl.open.Load(), fl.opened.Load(), fl.evicted.Load(), fl.refused.Load(), fl.timedOut.Load(), fl.other.Load(), fl.dialErr.Load())
	}
	if c.idle > 0 {
		still := 0
		for _, ic := range idleConns {
			ic.SetReadDeadline(time.Now().Add(time.Millisecond))
			var b [1]byte
			_, err := ic.Read(b[:])
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				still++
			}
		}
		fmt.Fprintf(out, "idle: %d of %d still open at the end\n", still, len(idleConns))
	}
	return nil
}

// exchange sends req and reads the reply to EOF; when keep is not nil, the
// reply is stored there (replacing what it held).
func exchange(ctx context.Context, addr string, src net.Addr, req, buf []byte, keep *[]byte, timeout time.Duration) (int64, error) {
	if keep != nil {
		*keep = (*keep)[:0]
	}
	d := net.Dialer{Timeout: timeout, LocalAddr: src, Control: bindNoPort}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, &dialError{err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(req); err != nil {
		return 0, err
	}
	var n int64
	for {
		m, err := conn.Read(buf)
		n += int64(m)
		if keep != nil {
			*keep = append(*keep, buf[:m]...)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// bindNoPort lets the kernel choose the local port at connect time, knowing
// the destination, when a source address is given (IP_BIND_ADDRESS_NO_PORT):
// otherwise the port is chosen at bind time and may collide with a
// connection of the same four-tuple still in TIME_WAIT.
func bindNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// unexpectedError is a reply that does not match -expect.
type unexpectedError struct{ reply []byte }

func (e *unexpectedError) Error() string {
	r := e.reply
	if len(r) > 300 {
		r = r[:300]
	}
	return fmt.Sprintf("reply of %d bytes does not match -expect: %q", len(e.reply), r)
}

// dialError marks a connection that was never established: the client's
// side of the exchange, which a server can only cause by not accepting.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func errKind(err error) string {
	var de *dialError
	if errors.As(err, &de) {
		return "dial-" + errKind(de.err)
	}
	var ne net.Error
	var ue *unexpectedError
	switch {
	case errors.As(err, &ue):
		if len(ue.reply) == 0 {
			return "empty-reply"
		}
		return "unexpected-reply"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no-local-port"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.HasPrefix(err.Error(), "size "):
		return "short-reply"
	}
	return "other"
}

func sourceAddrs(spec string) ([]netip.Addr, error) {
	if spec == "" {
		return nil, nil
	}
	if a, err := netip.ParseAddr(spec); err == nil {
		if !a.IsLoopback() && !ula.Contains(a) {
			return nil, fmt.Errorf("%w: -from must be loopback", errUsage)
		}
		return []netip.Addr{a}, nil
	}
	p, err := netip.ParsePrefix(spec)
	if err != nil || !p.Addr().IsLoopback() && !ula.Contains(p.Addr()) || p.Addr().Is4() && p.Bits() < 16 {
		return nil, fmt.Errorf("%w: -from must be a loopback or unique-local address or prefix (IPv4: at least /16)", errUsage)
	}
	var out []netip.Addr
	for a := p.Masked().Addr().Next(); p.Contains(a) && len(out) < 1024; a = a.Next() {
		out = append(out, a)
	}
	return out, nil
}

// openIdle opens c.idle connections from c.idleFrom that send nothing. The
// server's read timeout decides how long they live.
func openIdle(ctx context.Context, c config) ([]net.Conn, error) {
	src, err := netip.ParseAddr(c.idleFrom)
	if err != nil || !src.IsLoopback() {
		return nil, fmt.Errorf("%w: -idle-from must be a loopback address", errUsage)
	}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	conns := make([]net.Conn, 0, c.idle)
	for i := 0; i < c.idle; i++ {
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return conns, err
		}
		conns = append(conns, conn)
	}
	return conns, nil
}

// ula is the unique-local IPv6 range: a source in it is only usable where a
// network namespace routes it to loopback.
var ula = netip.MustParsePrefix("fc00::/7")

// holdSources returns n source addresses of prefix: consecutive IPv4
// addresses, or one address in each of n consecutive IPv6 /64s.
func holdSources(prefix string, n int) ([]netip.Addr, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil || !p.Addr().IsLoopback() && !ula.Contains(p.Addr()) {
		return nil, fmt.Errorf("%w: -hold-from must be a loopback or unique-local prefix", errUsage)
	}
	var out []netip.Addr
	a := p.Masked().Addr()
	for len(out) < n {
		if a.Is4() {
			a = a.Next()
			if b := a.As4(); b[3] == 0 || b[3] == 255 {
				continue
			}
		} else {
			b := a.As16()
			// The next /64, host part ::1.
			for i := 7; i >= 0; i-- {
				b[i]++
				if b[i] != 0 {
					break
				}
			}
			for i := 8; i < 15; i++ {
				b[i] = 0
			}
			b[15] = 1
			a = netip.AddrFrom16(b)
		}
		if !p.Contains(a) {
			return nil, fmt.Errorf("%w: -hold-from %s holds fewer than %d addresses", errUsage, prefix, n)
		}
		out = append(out, a)
	}
	return out, nil
}

// reportOnSignal prints the count of connections the flood has opened so
// far, "hold-opened: N", each time the process receives SIGUSR1, so that a
// caller can measure over a window of the flood alone. The function it
// returns stops it.
func reportOnSignal(out io.Writer, f *flood) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ch:
				fmt.Fprintf(out, "hold-opened: %d\n", f.opened.Load())
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			wg.Wait()
		})
	}
}
