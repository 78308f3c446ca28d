//go:build linux

// Command publishload measures publishing to fingerd's web server: it
// sends PUT /~NAME/plan at a fixed rate (open loop: a slow server does not
// slow the sender down, requests queue instead) for a duration, and prints
// the rate achieved, latency percentiles and errors. Every answer must be
// 204; anything else is an error. A server slower than the rate is a figure,
// not an error: a publish due while -c are still in flight is not sent and
// is counted as late, and the rate achieved falls short of the one asked.
//
// With -seed it instead fills a store with N users (bench00000, ...), each
// with a plan and a token derived from its name, for the benchmarks.
//
//	publishload -seed 10000 -store sqlite:/tmp/x/fingerd.db -plan-file plan.txt
//	publishload -addr 127.0.0.1:8079 -users 10000 -rate 500 -d 10s
//
// Only loopback targets are accepted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/openfinger/finger/internal/store"
	_ "github.com/openfinger/finger/internal/store/sqlite"
	"github.com/openfinger/finger/test/load/loadstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "publishload:", err)
		os.Exit(1)
	}
}

// Name returns the name of bench user i; Token its token.
func Name(i int) string  { return fmt.Sprintf("bench%05d", i) }
func Token(i int) string { return "publishload-token-" + Name(i) }

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("publishload", flag.ContinueOnError)
	seed := fs.Int("seed", 0, "fill the store with this many users and exit")
	storeURL := fs.String("store", "", "store URL for -seed")
	planFile := fs.String("plan-file", "", "the plan every user gets (-seed) and publishes (with a counter line added)")
	addr := fs.String("addr", "127.0.0.1:8079", "web server `host:port` (loopback only)")
	users := fs.Int("users", 1000, "publish as users 0..users-1, in turn")
	rate := fs.Float64("rate", 100, "publishes per second")
	dur := fs.Duration("d", 10*time.Second, "duration")
	conc := fs.Int("c", 64, "requests in flight at most; beyond, a request due is not sent and counts as late")
	if err := fs.Parse(args); err != nil {
		return err
	}
	plan := "publishload plan\n"
	if *planFile != "" {
		b, err := os.ReadFile(*planFile)
		if err != nil {
			return err
		}
		plan = string(b)
	}
	if *seed > 0 {
		return seedStore(ctx, *storeURL, *seed, plan, out)
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return errors.New("-addr must be a loopback ip:port")
	}
	return load(ctx, ap, *users, *rate, *dur, *conc, plan, out)
}

func seedStore(ctx context.Context, url string, n int, plan string, out io.Writer) error {
	st, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	start := time.Now()
	for i := range n {
		u := store.User{Name: Name(i), RealName: fmt.Sprintf("Bench User %d", i), Listed: i%10 == 0}
		if err := st.CreateUser(ctx, u, store.HashToken(Token(i))); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
		if _, err := st.PutText(ctx, u.Name, store.KindPlan, plan); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "seeded %d users in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

func load(ctx context.Context, addr netip.AddrPort, users int, rate float64, dur time.Duration, conc int, plan string, out io.Writer) error {
	var (
		lat   []time.Duration
		fails loadstat.Failures
	)
	// Latency from when the request was due: queueing counts.
	rec := func(due time.Time, status int, body string, err error) {
		switch {
		case err != nil:
			fails.Add(err.Error(), "")
		case status != http.StatusNoContent:
			fails.Add(fmt.Sprintf("status %d", status), strings.TrimSpace(body))
		default:
			lat = append(lat, time.Since(due))
		}
	}
	sent, late, elapsed, err := rawLoad(func() bool { return ctx.Err() != nil }, addr, users, rate, dur, conc, plan, rec)
	if err != nil {
		return err
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return loadstat.Percentile(lat, p).Round(10 * time.Microsecond) }
	kinds, nerr := fails.Kinds()
	fmt.Fprintf(out, "publishes: %d ok, %d errors\n", len(lat), nerr)
	fmt.Fprintf(out, "rate: %.1f publishes/s (asked %.1f)\n", float64(len(lat))/elapsed.Seconds(), rate)
	fmt.Fprintf(out, "late: %d of %d due not sent (%d already in flight: the server was behind the rate)\n", late, sent, conc)
	fmt.Fprintf(out, "latency: p50 %v p99 %v max %v\n", pct(0.50), pct(0.99), pct(1))
	for _, k := range kinds {
		fmt.Fprintf(out, "error %s: %d (e.g. %q)\n", k.Name, k.Count, k.Example)
	}
	return nil
}
