// Command clusterload drives the cluster test (test/cluster/run.sh): finger
// load through HAProxy from many client addresses, publishing over HTTP,
// and the time a published plan takes to reach the other replicas. Every
// reply is checked: an empty or wrong reply is a failure. Each subcommand
// prints its figures as one line of key=value pairs, and exits 1 when a
// limit given on the command line is broken.
//
//	clusterload finger      -addr HOST:PORT -query NAME -expect TEXT ...
//	clusterload publish     -url URL -users FILE -duration D -state FILE
//	clusterload verify      -state FILE -stored FILE
//	clusterload visibility  -publish URL -finger A,B -http URL,URL -user NAME -token T -n N
//	clusterload cpu         -pids P,Q -duration D
//	clusterload http        -url URL -expect TEXT ...
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/openfinger/finger/test/load/loadstat"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clusterload finger|publish|verify|visibility|cpu|http [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "finger":
		err = fingerLoad(ctx, os.Args[2:])
	case "publish":
		err = publishLoad(ctx, os.Args[2:])
	case "verify":
		err = verify(ctx, os.Args[2:])
	case "visibility":
		err = visibility(ctx, os.Args[2:])
	case "cpu":
		err = cpuIdle(ctx, os.Args[2:])
	case "http":
		err = httpLoad(ctx, os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "clusterload: unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "clusterload %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// sources hands out local addresses to dial from, round robin, so that
// load spreads over many client addresses (and HAProxy's source hash over
// every replica) and stays under fingerd's per-address rate.
type sources struct {
	addrs []netip.Addr
	next  atomic.Uint64
}

// parseSources reads "A" or "A+N": N consecutive addresses from A.
func parseSources(s string) (*sources, error) {
	if s == "" {
		return &sources{}, nil
	}
	first, count, ok := strings.Cut(s, "+")
	a, err := netip.ParseAddr(first)
	if err != nil {
		return nil, fmt.Errorf("-src: %v", err)
	}
	n := 1
	if ok {
		if n, err = strconv.Atoi(count); err != nil || n < 1 {
			return nil, fmt.Errorf("-src: bad count %q", count)
		}
	}
	src := &sources{}
	for range n {
		src.addrs = append(src.addrs, a)
		a = a.Next()
	}
	return src, nil
}

func (s *sources) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if len(s.addrs) > 0 {
		a := s.addrs[s.next.Add(1)%uint64(len(s.addrs))]
		d.LocalAddr = &net.TCPAddr{IP: a.AsSlice()}
	}
	return d
}

// fingerQuery sends query to addr and returns the whole reply.
func fingerQuery(ctx context.Context, d *net.Dialer, addr, query string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, query+"\r\n"); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(c, 1<<20))
	if err != nil {
		return b, fmt.Errorf("read: %w", err)
	}
	return b, nil
}

// classify names the kind of a failure, for the breakdown.
func classify(err error, reply []byte) string {
	switch {
	case err != nil && strings.Contains(err.Error(), "refused"):
		return "refused"
	case err != nil && strings.Contains(err.Error(), "reset"):
		return "reset"
	case err != nil && strings.HasPrefix(err.Error(), "dial"):
		return "dial"
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case err != nil:
		return "io"
	case len(reply) == 0:
		return "empty"
	case bytes.Contains(reply, []byte("rate limit")):
		return "rate-limited"
	case bytes.Contains(reply, []byte("too many connections")):
		return "busy"
	default:
		return "wrong-reply"
	}
}

// pacer releases n requests at rate per second (0: as fast as the
// workers go) until ctx ends or n is reached (n <= 0: no count limit).
func pacer(ctx context.Context, rate float64, n int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		start := time.Now()
		for i := 0; n <= 0 || i < n; i++ {
			if rate > 0 {
				due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
			}
			select {
			case ch <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// cpuTicks returns the user+system CPU time of the processes, in clock
// ticks (1/100 s on Linux).
func cpuTicks(pids []int) (int64, error) {
	var total int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return 0, err
		}
		// The command name may hold spaces: fields count from after ')'.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: short", p)
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + s
	}
	return total, nil
}

func parsePids(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("-cpu-pids: %q", f)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// percentile sorts ds and returns its p quantile.
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return loadstat.Percentile(ds, p)
}

// served is what a run of requests served: the latencies of the good
// answers and the failures by kind.
type served struct {
	sent, ok int64
	lat      []time.Duration
	fails    loadstat.Failures
	elapsed  time.Duration
}

// serve runs conc workers that each take a tick and ask, until ticks is
// closed. ask returns "" for a good answer, or the kind of the failure and
// an example.
func serve(conc int, ticks <-chan struct{}, ask func() (kind, example string)) *served {
	r := &served{}
	var (
		sent, ok atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			var mine []time.Duration
			for range ticks {
				sent.Add(1)
				t0 := time.Now()
				kind, ex := ask()
				if kind != "" {
					r.fails.Add(kind, ex)
					continue
				}
				ok.Add(1)
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			r.lat = append(r.lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.sent, r.ok = sent.Load(), ok.Load()
	return r
}

func (r *served) failPct() float64 {
	if r.sent == 0 {
		return 0
	}
	return 100 * float64(r.sent-r.ok) / float64(r.sent)
}

// line returns the figures, labelled.
func (r *served) line(label string) string {
	return fmt.Sprintf("%s: sent=%d ok=%d failed=%d fail_pct=%.3f rps=%.0f p50_ms=%s p99_ms=%s failures=%s",
		label, r.sent, r.ok, r.sent-r.ok, r.failPct(), float64(r.ok)/r.elapsed.Seconds(),
		ms(percentile(r.lat, .5)), ms(percentile(r.lat, .99)), r.fails.String())
}

// check prints an example of each kind of failure on stderr, and returns an
// error when nothing was answered or more than maxFail percent of the
// requests (one, many: what they are called) failed.
func (r *served) check(label, one, many string, maxFail float64) error {
	kinds, _ := r.fails.Kinds()
	for _, k := range kinds {
		fmt.Fprintf(os.Stderr, "%s: example %s failure: %s\n", label, k.Name, k.Example)
	}
	if r.ok == 0 {
		return fmt.Errorf("no %s answered", one)
	}
	if pct := r.failPct(); pct > maxFail {
		return fmt.Errorf("%.3f%% of %s failed, more than %.3f%%", pct, many, maxFail)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// fingerLoad runs finger queries against one address and reports what
// was served.
func fingerLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("finger", flag.ExitOnError)
	addr := fs.String("addr", "", "finger server `host:port` (HAProxy or a replica)")
	src := fs.String("src", "", "dial from `A+N`: N consecutive local addresses from A")
	query := fs.String("query", "", "the query line, without its line end")
	expect := fs.String("expect", "", "text every reply must contain")
	rate := fs.Float64("rate", 0, "queries per second in total (0: as fast as the workers go)")
	n := fs.Int("n", 0, "stop after this many queries (0: run for -duration)")
	dur := fs.Duration("duration", 10*time.Second, "how long to run when -n is 0")
	conc := fs.Int("c", 16, "concurrent connections")
	label := fs.String("label", "finger", "name printed with the figures")
	maxFail := fs.Float64("max-fail-pct", 100, "exit 1 when more than this percentage of queries fail")
	pidList := fs.String("cpu-pids", "", "comma-separated PIDs whose CPU time per answer is reported")
	fs.Parse(args)
	if *addr == "" || *query == "" || *expect == "" {
		return errors.New("-addr, -query and -expect are required")
	}
	srcs, err := parseSources(*src)
	if err != nil {
		return err
	}
	pids, err := parsePids(*pidList)
	if err != nil {
		return err
	}
	if *n <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	cpu0, err := cpuTicks(pids)
	if err != nil {
		return err
	}
	// A query runs to its end even when the run's time is up: a query cut
	// off by the tool is not a failure.
	r := serve(*conc, pacer(ctx, *rate, *n), func() (string, string) {
		reply, err := fingerQuery(context.Background(), srcs.dialer(), *addr, *query)
		if err == nil && bytes.Contains(reply, []byte(*expect)) {
			return "", ""
		}
		return classify(err, reply), fmt.Sprintf("%v %q", err, firstLine(reply))
	})
	cpu1, err := cpuTicks(pids)
	if err != nil {
		return err
	}
	line := r.line(*label)
	if len(pids) > 0 && r.ok > 0 {
		// Clock ticks are 10 ms.
		line += fmt.Sprintf(" cpu_s=%.2f cpu_us_per_answer=%.1f", float64(cpu1-cpu0)/100, float64(cpu1-cpu0)*1e4/float64(r.ok))
	}
	fmt.Println(line)
	return r.check(*label, "query", "queries", *maxFail)
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	if len(l) > 120 {
		l = l[:120]
	}
	return string(l)
}

// user is a hosted user and its publishing token.
type user struct{ name, token string }

// readUsers reads "NAME TOKEN" lines.
func readUsers(path string) ([]user, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var us []user
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, tok, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		us = append(us, user{name, strings.TrimSpace(tok)})
	}
	if len(us) == 0 {
		return nil, fmt.Errorf("%s: no users", path)
	}
	return us, sc.Err()
}

// httpClient dials from the configured source addresses.
func httpClient(srcs *sources) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return srcs.dialer().DialContext(ctx, network, addr)
			},
			// A new connection per request: HAProxy balances
			// connections, and keep-alive would pin a client to one
			// replica for the whole run.
			DisableKeepAlives: true,
		},
	}
}

// put publishes text as u's plan at base; it returns the status and the
// one-line body of an error.
func put(ctx context.Context, c *http.Client, base string, u user, text string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/~"+u.name+"/plan", strings.NewReader(text))
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth(u.name, u.token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// get returns the body at url, with an error for any status but 200.
func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, err
}

// publishState is what publish leaves for verify: for each user, the
// highest sequence number whose publish was answered 204.
type publishState struct {
	Acked map[string]int `json:"acked"`
}

// publishLoad publishes plans "seq N" for every user, one worker per
// share of the users so that each user's publishes are in order, and
// records which were acknowledged.
func publishLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ExitOnError)
	base := fs.String("url", "", "base URL (HAProxy's web frontend)")
	usersPath := fs.String("users", "", "file of NAME TOKEN lines")
	src := fs.String("src", "", "dial from `A+N`")
	dur := fs.Duration("duration", 10*time.Second, "how long to publish")
	conc := fs.Int("c", 4, "concurrent publishers")
	rate := fs.Float64("rate", 50, "publishes per second in total")
	statePath := fs.String("state", "", "file to write the acknowledged sequence numbers to")
	label := fs.String("label", "publish", "name printed with the figures")
	once := fs.Bool("once", false, "publish once for each user, then stop (exit 1 unless every publish is answered 204)")
	fs.Parse(args)
	us, err := readUsers(*usersPath)
	if err != nil {
		return err
	}
	srcs, err := parseSources(*src)
	if err != nil {
		return err
	}
	c := httpClient(srcs)
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var (
		mu       sync.Mutex
		acked    = map[string]int{}
		statuses loadstat.Failures
		reasons  loadstat.Failures
		lat      []time.Duration
		wg       sync.WaitGroup
	)
	ticks := pacer(ctx, *rate, 0)
	for w := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []user
			for j := w; j < len(us); j += *conc {
				mine = append(mine, us[j])
			}
			if len(mine) == 0 {
				return
			}
			seq := 0
			for i := 0; !*once || i < len(mine); i++ {
				if _, ok := <-ticks; !ok {
					return
				}
				u := mine[i%len(mine)]
				seq++
				text := fmt.Sprintf("seq %d of %s\n", seq, u.name)
				t0 := time.Now()
				st, body, err := put(context.Background(), c, *base, u, text)
				d := time.Since(t0)
				switch {
				case err != nil:
					statuses.Add("error", err.Error())
				default:
					statuses.Add(strconv.Itoa(st), body)
					if st != http.StatusNoContent {
						reasons.Add(fmt.Sprintf("%d %s", st, body), "")
					}
				}
				if err == nil && st == http.StatusNoContent {
					mu.Lock()
					acked[u.name] = max(acked[u.name], seq)
					lat = append(lat, d)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%s: statuses=%s p50_ms=%s p99_ms=%s\n", *label, statuses.String(), ms(percentile(lat, .5)), ms(percentile(lat, .99)))
	rs, _ := reasons.Kinds()
	for _, r := range rs {
		fmt.Printf("%s: %d answered: %s\n", *label, r.Count, r.Name)
	}
	if *statePath != "" {
		b, _ := json.Marshal(publishState{Acked: acked})
		if err := os.WriteFile(*statePath, b, 0o644); err != nil {
			return err
		}
	}
	if len(acked) == 0 {
		return errors.New("no publish was acknowledged")
	}
	if *once && len(acked) != len(us) {
		return fmt.Errorf("%d of %d users' publishes were acknowledged", len(acked), len(us))
	}
	return nil
}

// verify checks that no acknowledged publish was lost: for every user,
// the stored plan's sequence number is at least the highest acknowledged
// one. The stored plans come from the database itself (-stored, lines
// "NAME seq N of NAME" as psql prints them), not from a replica's cache.
func verify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	statePath := fs.String("state", "", "file written by publish")
	storedPath := fs.String("stored", "", "the plans in the database: NAME BODY lines")
	label := fs.String("label", "verify", "name printed with the figures")
	fs.Parse(args)
	b, err := os.ReadFile(*statePath)
	if err != nil {
		return err
	}
	var st publishState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	stored := map[string]int{}
	f, err := os.ReadFile(*storedPath)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(f), "\n") {
		var name, who string
		var seq int
		if _, err := fmt.Sscanf(line, "%s seq %d of %s", &name, &seq, &who); err == nil && who == name {
			stored[name] = seq
		}
	}
	lost := 0
	for name, want := range st.Acked {
		got, ok := stored[name]
		if !ok || got < want {
			lost++
			fmt.Fprintf(os.Stderr, "%s: %s: stored seq %d, but seq %d was acknowledged\n", *label, name, got, want)
		}
	}
	fmt.Printf("%s: users_checked=%d lost_acknowledged=%d\n", *label, len(st.Acked), lost)
	if len(st.Acked) == 0 {
		return errors.New("nothing to verify: no publish was acknowledged")
	}
	if lost > 0 {
		return fmt.Errorf("%d acknowledged publishes lost", lost)
	}
	return nil
}

// visibility publishes n plans on one replica and measures, for each, the
// time from the 204 until every other replica shows it over finger and
// over HTTP.
func visibility(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("visibility", flag.ExitOnError)
	pub := fs.String("publish", "", "base URL of the replica that takes the publishes")
	fingers := fs.String("finger", "", "comma-separated finger addresses of the replicas that read")
	https := fs.String("http", "", "comma-separated base URLs of the replicas that read")
	name := fs.String("user", "", "hosted user")
	token := fs.String("token", "", "its token")
	n := fs.Int("n", 1000, "publishes")
	src := fs.String("src", "", "dial the reads from `A+N`")
	limit := fs.Duration("max-p99", time.Second, "exit 1 when the p99 is above this")
	fs.Parse(args)
	srcs, err := parseSources(*src)
	if err != nil {
		return err
	}
	u := user{*name, *token}
	pc := httpClient(&sources{})
	rc := httpClient(srcs)
	type reader struct {
		kind, where string
	}
	var readers []reader
	for _, a := range strings.Split(*fingers, ",") {
		if a != "" {
			readers = append(readers, reader{"finger", a})
		}
	}
	for _, a := range strings.Split(*https, ",") {
		if a != "" {
			readers = append(readers, reader{"http", a})
		}
	}
	if len(readers) == 0 {
		return errors.New("no readers")
	}
	nonce := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	byKind := map[string][]time.Duration{}
	var worst []time.Duration
	over := 0
	for i := range *n {
		marker := fmt.Sprintf("visibility %s %d", nonce, i)
		st, body, err := put(ctx, pc, *pub, u, marker+"\n")
		if err != nil || st != http.StatusNoContent {
			return fmt.Errorf("publish %d: status %d %q %v", i, st, body, err)
		}
		acked := time.Now()
		res := make([]time.Duration, len(readers))
		var wg sync.WaitGroup
		var failed atomic.Value
		for j, r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := acked.Add(10 * time.Second)
				for {
					var got []byte
					var err error
					if r.kind == "finger" {
						got, err = fingerQuery(ctx, srcs.dialer(), r.where, *name)
					} else {
						got, err = get(ctx, rc, r.where+"/~"+*name+"/plan")
					}
					if err == nil && bytes.Contains(got, []byte(marker)) {
						res[j] = time.Since(acked)
						return
					}
					if time.Now().After(deadline) || ctx.Err() != nil {
						failed.Store(fmt.Sprintf("%s %s: %q not visible after 10s (last reply %q, %v)", r.kind, r.where, marker, firstLine(got), err))
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		if f := failed.Load(); f != nil {
			return errors.New(f.(string))
		}
		w := time.Duration(0)
		for j, r := range readers {
			byKind[r.kind] = append(byKind[r.kind], res[j])
			w = max(w, res[j])
		}
		worst = append(worst, w)
		if w > time.Second {
			over++
		}
	}
	line := fmt.Sprintf("visibility: publishes=%d readers=%d p50_ms=%s p99_ms=%s max_ms=%s over_1s=%d",
		*n, len(readers), ms(percentile(worst, .5)), ms(percentile(worst, .99)), ms(percentile(worst, 1)), over)
	for _, k := range []string{"finger", "http"} {
		if ds := byKind[k]; len(ds) > 0 {
			line += fmt.Sprintf(" %s_p99_ms=%s", k, ms(percentile(ds, .99)))
		}
	}
	fmt.Println(line)
	if p := percentile(worst, .99); p > *limit {
		return fmt.Errorf("p99 %v above %v", p, *limit)
	}
	return nil
}

// cpuIdle reports the CPU time the processes use over a time without
// load: what they spend whatever the requests (polling the store, health
// checks), to set against the CPU measured under load.
func cpuIdle(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cpu", flag.ExitOnError)
	pidList := fs.String("pids", "", "comma-separated PIDs")
	dur := fs.Duration("duration", 10*time.Second, "how long to measure")
	label := fs.String("label", "cpu", "name printed with the figures")
	fs.Parse(args)
	pids, err := parsePids(*pidList)
	if err != nil || len(pids) == 0 {
		return fmt.Errorf("-pids: %v", err)
	}
	c0, err := cpuTicks(pids)
	if err != nil {
		return err
	}
	select {
	case <-time.After(*dur):
	case <-ctx.Done():
		return ctx.Err()
	}
	c1, err := cpuTicks(pids)
	if err != nil {
		return err
	}
	fmt.Printf("%s: seconds=%.0f cpu_s=%.2f\n", *label, dur.Seconds(), float64(c1-c0)/100)
	return nil
}

// httpLoad reads one URL over and over, a new connection each time, and
// reports what was served.
func httpLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("http", flag.ExitOnError)
	url := fs.String("url", "", "the URL to GET")
	src := fs.String("src", "", "dial from `A+N`: N consecutive local addresses from A")
	expect := fs.String("expect", "", "text every body must contain")
	rate := fs.Float64("rate", 0, "requests per second in total (0: as fast as the workers go)")
	dur := fs.Duration("duration", 10*time.Second, "how long to run")
	conc := fs.Int("c", 8, "concurrent requests")
	label := fs.String("label", "http", "name printed with the figures")
	maxFail := fs.Float64("max-fail-pct", 100, "exit 1 when more than this percentage of requests fail")
	fs.Parse(args)
	if *url == "" || *expect == "" {
		return errors.New("-url and -expect are required")
	}
	srcs, err := parseSources(*src)
	if err != nil {
		return err
	}
	c := httpClient(srcs)
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	want := []byte(*expect)
	r := serve(*conc, pacer(ctx, *rate, 0), func() (string, string) {
		body, err := get(context.Background(), c, *url)
		if err == nil && bytes.Contains(body, want) {
			return "", ""
		}
		kind := "wrong-body"
		if err != nil {
			kind = classify(err, body)
		}
		return kind, fmt.Sprintf("%v %q", err, firstLine(body))
	})
	fmt.Println(r.line(*label))
	return r.check(*label, "request", "requests", *maxFail)
}
