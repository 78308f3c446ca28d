package logtext

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// both logs through a Handler and through slog.TextHandler with the same
// options, every record stamped recordTime, and returns the two outputs.
func both(t testing.TB, opts *slog.HandlerOptions, log func(*slog.Logger)) (got, want string) {
	return bothAt(t, instant.Add(-time.Hour), opts, log)
}

func bothAt(t testing.TB, at time.Time, opts *slog.HandlerOptions, log func(*slog.Logger)) (got, want string) {
	t.Helper()
	var a, b bytes.Buffer
	log(slog.New(stamped{New(&a, opts), at}))
	log(slog.New(stamped{slog.NewTextHandler(&b, opts), at}))
	return a.String(), b.String()
}

// stamped gives every record the same time, so that two loggers' lines
// can be compared.
type stamped struct {
	h  slog.Handler
	at time.Time
}

func (s stamped) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }
func (s stamped) Handle(ctx context.Context, r slog.Record) error {
	r.Time = s.at
	return s.h.Handle(ctx, r)
}
func (s stamped) WithAttrs(as []slog.Attr) slog.Handler { return stamped{s.h.WithAttrs(as), s.at} }
func (s stamped) WithGroup(g string) slog.Handler       { return stamped{s.h.WithGroup(g), s.at} }

var (
	eastern = time.FixedZone("X", -5*3600-30*60)
	instant = time.Date(2026, 12, 5, 13, 4, 5, 987654321, time.UTC)
)

type stringer struct{}

func (stringer) String() string { return "a stringer" }

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved value") }

func TestSameBytesAsTextHandler(t *testing.T) {
	ctx := context.Background()
	strs := []string{
		"", "plain", "two words", "a=b", `say "hi"`, `back\slash`, "tab\there", "line\nend",
		"del\x7f", "nul\x00", "caf\u00e9", "\u4e2d\u6587", "no\u00a0break", "bidi\u202e",
		"bad\xffutf8", "emoji\U0001F600", "[::1]:79", "127.0.0.1:4079", "user@host@host",
	}
	for _, s := range strs {
		got, want := both(t, nil, func(l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelInfo, s, slog.String(s, s), slog.String("k", s))
		})
		if got != want {
			t.Errorf("string %q:\n got %s\nwant %s", s, got, want)
		}
	}
	cases := []struct {
		name string
		log  func(*slog.Logger)
	}{
		{"query record", func(l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelInfo, "finger query",
				slog.Time("start", instant), slog.String("remote", "127.0.1.23:45678"),
				slog.String("query", "/W jane"), slog.String("kind", "user"), slog.String("outcome", "ok"),
				slog.Int64("bytes", 1215), slog.Duration("duration", 123456*time.Nanosecond))
		}},
		{"numbers", func(l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelWarn, "n", slog.Int("i", -42), slog.Uint64("u", math.MaxUint64),
				slog.Float64("f", 1.5e-7), slog.Float64("nan", math.NaN()), slog.Float64("inf", math.Inf(-1)),
				slog.Bool("t", true), slog.Bool("f", false), slog.Duration("d", 0), slog.Duration("neg", -time.Hour))
		}},
		{"times", func(l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelError, "t", slog.Time("z", instant.In(eastern)), slog.Time("zero", time.Time{}),
				slog.Time("ms", time.Date(2026, 1, 2, 3, 4, 5, 1e6, time.UTC)), slog.Time("far", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)),
				slog.Time("y0", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)), slog.Time("y9999", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)))
			for _, off := range []int{30, -30, -90, 59, 61, 14 * 3600, -12*3600 - 45*60 - 15} {
				l.LogAttrs(ctx, slog.LevelInfo, "zone", slog.Int("offset", off), slog.Time("t", instant.In(time.FixedZone("O", off))))
			}
		}},
		{"levels", func(l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelInfo+2, "x")
			l.LogAttrs(ctx, slog.LevelError+8, "y")
		}},
		{"empty attrs and keys", func(l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelInfo, "e", slog.Attr{}, slog.Any("", nil), slog.String("", "v"), slog.Int("", 0), slog.String("after", "x"))
		}},
		{"other kinds", func(l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelInfo, "o", slog.String("before", "x"), slog.Any("err", errors.New("bad thing")),
				slog.Any("s", stringer{}), slog.Any("v", valuer{}), slog.Group("g", slog.Int("a", 1)), slog.Any("b", []byte("raw")))
		}},
		{"with attrs and group", func(l *slog.Logger) {
			l.With("conn", 7).WithGroup("q").Info("m", "k", "v")
		}},
		{"Info with pairs", func(l *slog.Logger) {
			l.Info("finger: started", "listen", "[::]:79", "pid", 1234, slog.Attr{})
		}},
		{"below the level", func(l *slog.Logger) {
			l.Debug("hidden")
			l.Info("shown")
		}},
	}
	for _, c := range cases {
		got, want := both(t, nil, c.log)
		if got != want || want == "" {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
	}

	replace := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == "secret" {
			return slog.String("secret", "***")
		}
		return a
	}
	for _, opts := range []*slog.HandlerOptions{
		{Level: slog.LevelDebug}, {Level: slog.LevelWarn}, {AddSource: true}, {ReplaceAttr: replace},
	} {
		got, want := both(t, opts, func(l *slog.Logger) {
			l.Debug("d", "secret", "x")
			l.Info("i", "secret", "x")
			l.Warn("w", "secret", "x")
		})
		if opts.AddSource {
			// Each logs from its own line of this file.
			got, want = stripSource(got), stripSource(want)
		}
		if got != want {
			t.Errorf("options %+v:\n got %s\nwant %s", *opts, got, want)
		}
	}
}

func stripSource(s string) string {
	var out []string
	for _, f := range strings.Fields(s) {
		if !strings.HasPrefix(f, "source=") {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

// TestFastPath: flat records are formatted by the handler itself (the
// comparisons above would also pass if every record went to slog), and
// only those.
func TestFastPath(t *testing.T) {
	rec := func(tm time.Time, attrs ...slog.Attr) slog.Record {
		r := slog.NewRecord(tm, slog.LevelInfo, "finger query", 0)
		r.AddAttrs(attrs...)
		return r
	}
	flat := []slog.Record{
		rec(instant, slog.Time("start", instant), slog.String("remote", "127.0.1.23:45678"),
			slog.String("query", "/W jane"), slog.String("kind", "user"), slog.String("outcome", "ok"),
			slog.Int64("bytes", 1215), slog.Duration("duration", 123456*time.Nanosecond)),
		rec(instant.In(eastern), slog.Uint64("u", 7), slog.Float64("f", 0.5), slog.Bool("b", true), slog.Attr{}, slog.String("", "x")),
		rec(time.Time{}),
	}
	for i, r := range flat {
		b, ok := appendRecord(nil, r)
		var want bytes.Buffer
		slog.NewTextHandler(&want, nil).Handle(context.Background(), r)
		if !ok || string(b) != want.String() {
			t.Errorf("flat record %d: fast path %v, %q; want true, %q", i, ok, b, want.String())
		}
	}
	other := map[string]slog.Record{
		"group":          rec(instant, slog.String("a", "b"), slog.Group("g", slog.Int("i", 1))),
		"error value":    rec(instant, slog.Any("err", errors.New("x"))),
		"log valuer":     rec(instant, slog.Any("v", valuer{})),
		"attribute year": rec(instant, slog.Time("t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))),
		"record year":    rec(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), slog.Int("i", 1)),
	}
	for name, r := range other {
		if _, ok := appendRecord(nil, r); ok {
			t.Errorf("%s: formatted by the fast path; want it left to slog", name)
		}
	}
}

func TestRecordTime(t *testing.T) {
	var buf bytes.Buffer
	h := New(&buf, nil)
	r := slog.NewRecord(instant.In(eastern), slog.LevelInfo, "m", 0)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	const want = "time=2026-12-05T07:34:05.987-05:30 level=INFO msg=m\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
	buf.Reset()
	if err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "no time", 0)); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "level=INFO msg=\"no time\"\n" {
		t.Errorf("zero time: got %q", got)
	}
}

// Lines written at once by both paths never interleave.
func TestConcurrentLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(New(&slowWriter{w: &buf}, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if i%2 == 0 {
					l.Info("fast", "i", i, "pad", strings.Repeat("x", 100))
				} else {
					l.Info("slow", "g", slog.GroupValue(slog.Int("i", i)), "pad", strings.Repeat("y", 100))
				}
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, ln := range lines {
		if !strings.HasPrefix(ln, "time=") || strings.Count(ln, "time=") != 1 ||
			!(strings.HasSuffix(ln, strings.Repeat("x", 100)) || strings.HasSuffix(ln, strings.Repeat("y", 100))) {
			t.Fatalf("mangled line %q", ln)
		}
	}
}

// slowWriter writes a line in pieces, as a writer without atomic writes
// may.
type slowWriter struct{ w *bytes.Buffer }

func (s *slowWriter) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i += 7 {
		s.w.Write(p[i:min(i+7, len(p))])
		runtime.Gosched()
	}
	return len(p), nil
}

func FuzzSameBytesAsTextHandler(f *testing.F) {
	f.Add("finger query", "remote", "127.0.0.1:79", int64(1215), 1.5, int64(123456), int64(1764939845987654321), int64(0), true)
	f.Add("", "", "a b", int64(-1), math.Inf(1), int64(-1), int64(0), int64(-19800), false)
	f.Add("m=\"x\"", "k\x00", "\xff\u202e", int64(0), -0.0, int64(math.MaxInt64), int64(math.MinInt64), int64(3600), true)
	f.Fuzz(func(t *testing.T, msg, key, s string, i int64, fl float64, d int64, unix int64, zone int64, b bool) {
		loc := time.FixedZone("F", int(zone%(26*3600)))
		tm := time.Unix(0, unix).In(loc)
		got, want := bothAt(t, tm, nil, func(l *slog.Logger) {
			l.LogAttrs(context.Background(), slog.Level(i%20), msg,
				slog.String(key, s), slog.Int64(s, i), slog.Uint64("u", uint64(i)), slog.Float64(key, fl),
				slog.Bool("b", b), slog.Duration("d", time.Duration(d)), slog.Time("t", tm))
		})
		if got != want {
			t.Errorf("\n got %q\nwant %q", got, want)
		}
	})
}

// The query record fingerd writes for every answer, through a Handler and
// through slog.TextHandler, to a file as fingerd's log usually is.
func BenchmarkQueryRecord(b *testing.B) {
	for _, c := range []struct {
		name string
		new  func(w *os.File) slog.Handler
	}{
		{"logtext", func(w *os.File) slog.Handler { return New(w, nil) }},
		{"slog.TextHandler", func(w *os.File) slog.Handler { return slog.NewTextHandler(w, nil) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			h := c.new(f)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "finger query", 0)
				r.AddAttrs(slog.Time("start", instant), slog.String("remote", "127.0.1.23:45678"),
					slog.String("query", "jane"), slog.String("kind", "user"), slog.String("outcome", "ok"),
					slog.Int64("bytes", 1215), slog.Duration("duration", 123456*time.Nanosecond))
				h.Handle(ctx, r)
			}
		})
	}
}
