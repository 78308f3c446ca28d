package finger

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	fltStrict = Filter{}
	fltUTF8   = Filter{UTF8: true}
	fltHigh   = Filter{AllowHigh: true}
	fltCtrl   = Filter{AllowControl: true}
	fltBoth   = Filter{AllowControl: true, AllowHigh: true}
)

var fltModes = []struct {
	name string
	f    Filter
}{
	{"strict", fltStrict},
	{"utf8", fltUTF8},
	{"high", fltHigh},
	{"control", fltCtrl},
	{"both", fltBoth},
	// UTF8 ignores the two switches.
	{"utf8+both", Filter{UTF8: true, AllowControl: true, AllowHigh: true}},
}

var fltTests = []struct {
	name string
	f    Filter
	in   string
	want string
}{
	{"empty", fltStrict, "", ""},
	{"plain", fltStrict, "Login: bob\tName: Bob\n", "Login: bob\tName: Bob\n"},
	{"crlf kept", fltStrict, "a\r\nb\r\n", "a\r\nb\r\n"},
	{"bare lf kept", fltStrict, "a\nb\n", "a\nb\n"},
	{"lone cr is a line end", fltStrict, "Plan: nice\rPlan: evil", "Plan: nice\r\nPlan: evil"},
	{"cr cr lf is one line end", fltStrict, "a\r\r\nb", "a\r\nb"},
	{"cr run is one line end", fltStrict, "a\r\r\rb", "a\r\nb"},
	{"cr lf cr lf", fltStrict, "\r\n\r\n", "\r\n\r\n"},
	{"trailing cr", fltStrict, "a\r", "a\r\n"},
	{"only cr", fltStrict, "\r", "\r\n"},
	{"lf cr", fltStrict, "a\n\rb", "a\n\r\nb"},
	{"esc sequence", fltStrict, "\x1b[2J\x1b[31mred\x1b[0m", "^[[2J^[[31mred^[[0m"},
	{"nul", fltStrict, "\x00", "^@"},
	{"c0 range", fltStrict, "\x01\x07\x08\x0b\x0c\x1f", "^A^G^H^K^L^_"},
	{"del", fltStrict, "\x7f", "^?"},
	{"high bytes", fltStrict, "\x80\x9b\xa0\xff", `\x80\x9b\xa0\xff`},
	{"utf8 in strict", fltStrict, "中", `\xe4\xb8\xad`},
	{"latin1 in strict", fltStrict, "caf\xe9", `caf\xe9`},

	{"high passes high", fltHigh, "caf\xe9 中\x9b\x7f", "caf\xe9 中\x9b\x7f"},
	{"high escapes c0", fltHigh, "\x1b[0m", "^[[0m"},
	{"high lone cr", fltHigh, "a\rb", "a\r\nb"},

	{"control passes c0", fltCtrl, "\x1b[0m\x07", "\x1b[0m\x07"},
	{"control passes lone cr", fltCtrl, "a\rb\r\r\n", "a\rb\r\r\n"},
	{"control escapes high", fltCtrl, "\x9b\x7f", `\x9b^?`},
	{"both is identity", fltBoth, "\x00\x1b\r\x7f\x9b\xff", "\x00\x1b\r\x7f\x9b\xff"},

	{"utf8 chinese", fltUTF8, "张伟 中文\r\n", "张伟 中文\r\n"},
	{"utf8 emoji zwj", fltUTF8, "👨\u200d👩", "👨\u200d👩"},
	{"utf8 replacement char kept", fltUTF8, "\ufffd", "\ufffd"},
	{"utf8 esc", fltUTF8, "\x1b]0;title\x07", "^[]0;title^G"},
	{"utf8 del", fltUTF8, "\x7f", "^?"},
	{"utf8 8-bit csi byte", fltUTF8, "\x9b2J", `\x9b2J`},
	{"utf8 c1 csi code point", fltUTF8, "\u009b2J", `\u009b2J`},
	{"utf8 c1 osc dcs st", fltUTF8, "\u009d\u0090\u009c\u0085", `\u009d\u0090\u009c\u0085`},
	{"utf8 bidi override", fltUTF8, "a\u202eb\u202cc", `a\u202eb\u202cc`},
	{"utf8 bidi isolates and marks", fltUTF8, "\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
		`\u2066\u2067\u2068\u2069\u200e\u200f\u061c`},
	{"utf8 line separators", fltUTF8, "a\u2028b\u2029", `a\u2028b\u2029`},
	{"utf8 tag characters", fltUTF8, "x\U000E0041\U000E007F", `x\U000e0041\U000e007f`},
	{"utf8 invalid byte", fltUTF8, "a\xffb", `a\xffb`},
	{"utf8 latin1 is invalid", fltUTF8, "caf\xe9", `caf\xe9`},
	{"utf8 lone continuation", fltUTF8, "\xb8", `\xb8`},
	{"utf8 truncated at end", fltUTF8, "中\xe6\x96", `中\xe6\x96`},
	{"utf8 truncated before ascii", fltUTF8, "\xe6\x96A", `\xe6\x96A`},
	{"utf8 overlong", fltUTF8, "\xc0\xaf", `\xc0\xaf`},
	{"utf8 surrogate", fltUTF8, "\xed\xa0\x80", `\xed\xa0\x80`},
	{"utf8 beyond max", fltUTF8, "\xf4\x90\x80\x80", `\xf4\x90\x80\x80`},
	{"utf8 lone cr", fltUTF8, "中\r文", "中\r\n文"},
	{"utf8 ignores switches", Filter{UTF8: true, AllowControl: true, AllowHigh: true},
		"\x1b\x9b\r", `^[\x9b` + "\r\n"},
}

func TestFilterString(t *testing.T) {
	for _, tt := range fltTests {
		if got := tt.f.String(tt.in); got != tt.want {
			t.Errorf("%s: %+v.String(%q) = %q, want %q", tt.name, tt.f, tt.in, got, tt.want)
		}
		if got := string(tt.f.Append([]byte("pre:"), []byte(tt.in), true)); got != "pre:"+tt.want {
			t.Errorf("%s: %+v.Append(\"pre:\", %q, true) = %q, want %q", tt.name, tt.f, tt.in, got, "pre:"+tt.want)
		}
	}
}

// TestFilterWriterSplits writes every table input split at every pair of
// points, and byte by byte, and checks the output is the one-piece output.
func TestFilterWriterSplits(t *testing.T) {
	for _, tt := range fltTests {
		in := []byte(tt.in)
		for i := 0; i <= len(in); i++ {
			for j := i; j <= len(in); j++ {
				got := fltStream(t, tt.f, in[:i], in[i:j], in[j:])
				if got != tt.want {
					t.Errorf("%s: %+v writes %q %q %q = %q, want %q", tt.name, tt.f, in[:i], in[i:j], in[j:], got, tt.want)
				}
			}
		}
		var pieces [][]byte
		for i := range in {
			pieces = append(pieces, in[i:i+1])
		}
		if got := fltStream(t, tt.f, pieces...); got != tt.want {
			t.Errorf("%s: %+v byte-by-byte writes of %q = %q, want %q", tt.name, tt.f, tt.in, got, tt.want)
		}
	}
}

func fltStream(t testing.TB, f Filter, pieces ...[]byte) string {
	t.Helper()
	var buf bytes.Buffer
	fw := f.NewWriter(&buf)
	for _, p := range pieces {
		n, err := fw.Write(p)
		if n != len(p) || err != nil {
			t.Fatalf("FilterWriter.Write(%q) = %d, %v, want %d, nil", p, n, err, len(p))
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("FilterWriter.Close() = %v", err)
	}
	return buf.String()
}

func TestAppendPartial(t *testing.T) {
	tests := []struct {
		f     Filter
		in    string
		final bool
		want  string
		n     int
	}{
		{fltStrict, "abc", false, "abc", 3},
		{fltStrict, "abc\r", false, "abc", 3},
		{fltStrict, "abc\r", true, "abc\r\n", 4},
		{fltStrict, "a\r\r", false, "a", 2},
		{fltStrict, "a\r\n", false, "a\r\n", 3},
		{fltCtrl, "a\r", false, "a\r", 2},
		{fltStrict, "\xe4\xb8", false, `\xe4\xb8`, 2}, // fltStrict mode never waits
		{fltUTF8, "a\xe4\xb8", false, "a", 1},
		{fltUTF8, "a\xe4\xb8", true, `a\xe4\xb8`, 3},
		{fltUTF8, "a\xe4\xb8\xad", false, "a中", 4},
		{fltUTF8, "a\xe4A", false, `a\xe4A`, 3},
		{fltUTF8, "\xf0\x9f\x98", false, "", 0},
	}
	for _, tt := range tests {
		got, n := tt.f.AppendPartial(nil, []byte(tt.in), tt.final)
		if string(got) != tt.want || n != tt.n {
			t.Errorf("%+v.AppendPartial(nil, %q, %v) = %q, %d, want %q, %d", tt.f, tt.in, tt.final, got, n, tt.want, tt.n)
		}
	}
}

func TestFilterWriterCloseTwiceAndWriteAfterClose(t *testing.T) {
	var buf bytes.Buffer
	fw := fltUTF8.NewWriter(&buf)
	fw.Write([]byte("中\xe6"))
	if err := fw.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if got, want := buf.String(), `中\xe6`; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	if n, err := fw.Write([]byte("x")); n != 0 || err == nil {
		t.Errorf("Write after Close = %d, %v, want 0, error", n, err)
	}
}

type fltSink struct {
	okBytes int // bytes accepted before failing
	short   bool
	got     bytes.Buffer
}

var fltErrSink = errors.New("sink failed")

func (w *fltSink) Write(p []byte) (int, error) {
	if w.got.Len()+len(p) <= w.okBytes {
		w.got.Write(p)
		return len(p), nil
	}
	if w.short {
		return 0, nil
	}
	return 0, fltErrSink
}

func TestFilterWriterErrors(t *testing.T) {
	tests := []struct {
		name    string
		sink    *fltSink
		in      string
		wantErr error
	}{
		{"fast path", &fltSink{}, "plain", fltErrSink},
		{"slow path", &fltSink{}, "\x1b[0m", fltErrSink},
		{"short write fast path", &fltSink{short: true}, "plain", io.ErrShortWrite},
		{"short write slow path", &fltSink{short: true}, "\x1b", io.ErrShortWrite},
	}
	for _, tt := range tests {
		fw := fltStrict.NewWriter(tt.sink)
		n, err := fw.Write([]byte(tt.in))
		if n >= len(tt.in) || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Write(%q) = %d, %v, want < %d, %v", tt.name, tt.in, n, err, len(tt.in), tt.wantErr)
		}
		if n, err := fw.Write([]byte("more")); n != 0 || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Write after error = %d, %v, want 0, %v", tt.name, n, err, tt.wantErr)
		}
		if err := fw.Close(); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Close after error = %v, want %v", tt.name, err, tt.wantErr)
		}
	}

	// An error after some chunks reports the input bytes written before it.
	sink := &fltSink{okBytes: 2 * writeChunk * 2}
	fw := fltStrict.NewWriter(sink)
	in := bytes.Repeat([]byte{0x1b}, 10*writeChunk) // each byte becomes two
	n, err := fw.Write(in)
	if n != 2*writeChunk || !errors.Is(err, fltErrSink) {
		t.Errorf("Write(%d escapes) into a sink taking %d bytes = %d, %v, want %d, %v",
			len(in), sink.okBytes, n, err, 2*writeChunk, fltErrSink)
	}
}

// fltChunkRecorder records the largest single Write it receives.
type fltChunkRecorder struct {
	max   int
	total int
}

func (w *fltChunkRecorder) Write(p []byte) (int, error) {
	w.max = max(w.max, len(p))
	w.total += len(p)
	return len(p), nil
}

func TestFilterWriterBoundedMemory(t *testing.T) {
	// Worst expansion: each byte becomes a four-byte \xNN escape.
	in := bytes.Repeat([]byte{0x80}, 1<<20)
	var rec fltChunkRecorder
	fw := fltStrict.NewWriter(&rec)
	if n, err := fw.Write(in); n != len(in) || err != nil {
		t.Fatalf("Write(1 MiB) = %d, %v", n, err)
	}
	fw.Close()
	if rec.total != 4*len(in) {
		t.Errorf("output = %d bytes, want %d", rec.total, 4*len(in))
	}
	if limit := 4*writeChunk + 16; rec.max > limit || cap(fw.out) > 2*limit {
		t.Errorf("largest Write = %d bytes, buffer cap = %d, want both bounded by about %d", rec.max, cap(fw.out), limit)
	}
}

func TestFilterAllocs(t *testing.T) {
	ascii := strings.Repeat("Login: bob\tName: Bob\r\n", 20)
	chinese := strings.Repeat("登录名：张伟 中文计划\r\n", 20)
	if n := testing.AllocsPerRun(100, func() { fltStrict.String(ascii) }); n != 0 {
		t.Errorf("strict.String(ASCII) allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { fltUTF8.String(chinese) }); n != 0 {
		t.Errorf("utf8.String(Chinese) allocates %v times, want 0", n)
	}
	for _, c := range []struct {
		name string
		f    Filter
		in   []byte
	}{
		{"strict ASCII", fltStrict, []byte(ascii)},
		{"utf8 Chinese", fltUTF8, []byte(chinese)},
		{"strict hostile", fltStrict, fltHostile()},
		{"utf8 hostile", fltUTF8, fltHostile()},
	} {
		fw := c.f.NewWriter(io.Discard)
		fw.Write(c.in) // warm the buffer
		if n := testing.AllocsPerRun(100, func() { fw.Write(c.in) }); n != 0 {
			t.Errorf("%s: FilterWriter.Write allocates %v times, want 0", c.name, n)
		}
	}
}

// fltHostile is a reply built to attack a terminal.
func fltHostile() []byte {
	var b bytes.Buffer
	for b.Len() < 4096 {
		b.WriteString("\x1b[2J\x1b]0;pwned\x07\x9b31m\u202etxt.exe\rover\xff\xfe\x00")
	}
	return b.Bytes()
}

func FuzzFilter(f *testing.F) {
	for _, tt := range fltTests {
		f.Add([]byte(tt.in), uint64(len(tt.in)))
	}
	f.Add(fltHostile(), uint64(7))
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		for _, m := range fltModes {
			whole := string(m.f.Append(nil, in, true))
			if s := m.f.String(string(in)); s != whole {
				t.Fatalf("%s: String(%q) = %q, Append = %q", m.name, in, s, whole)
			}
			checkFilterOutput(t, m.name, m.f, in, whole)

			// Split at random points.
			r := rand.New(rand.NewPCG(seed, uint64(len(in))))
			var pieces [][]byte
			for rest := in; len(rest) > 0; {
				k := r.IntN(len(rest) + 1)
				pieces = append(pieces, rest[:k])
				rest = rest[k:]
			}
			if got := fltStream(t, m.f, pieces...); got != whole {
				t.Fatalf("%s: writes %q = %q, one piece = %q", m.name, pieces, got, whole)
			}
		}
	})
}

func checkFilterOutput(t *testing.T, mode string, f Filter, in []byte, out string) {
	t.Helper()
	if f.AllowControl && f.AllowHigh && !f.UTF8 {
		if out != string(in) {
			t.Fatalf("%s: filtered %q = %q, want it unchanged", mode, in, out)
		}
		return
	}
	for i := 0; i < len(out); i++ {
		c := out[i]
		if f.rawControl() {
			break
		}
		switch {
		case c == '\r':
			if i+1 >= len(out) || out[i+1] != '\n' {
				t.Fatalf("%s: filtered %q = %q: lone CR at %d", mode, in, out, i)
			}
		case c == '\n' || c == '\t':
		case c < 0x20:
			t.Fatalf("%s: filtered %q = %q: control byte 0x%02x at %d", mode, in, out, c, i)
		}
	}
	if f == fltStrict || f == fltCtrl {
		for i := 0; i < len(out); i++ {
			if out[i] >= 0x7f {
				t.Fatalf("%s: filtered %q = %q: byte 0x%02x at %d", mode, in, out, out[i], i)
			}
		}
	}
	if f.UTF8 {
		if !utf8.ValidString(out) {
			t.Fatalf("%s: filtered %q = %q: invalid UTF-8", mode, in, out)
		}
		for i, r := range out {
			if r == 0x7f || unsafeRune(r) {
				t.Fatalf("%s: filtered %q = %q: %U at %d", mode, in, out, r, i)
			}
		}
	}
	if len(out) > 4*len(in)+1 {
		t.Fatalf("%s: filtered %d bytes into %d", mode, len(in), len(out))
	}
}

func benchmarkFilter(b *testing.B, f Filter, in []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	fw := f.NewWriter(io.Discard)
	for b.Loop() {
		fw.Write(in)
	}
}

func BenchmarkFilter(b *testing.B) {
	ascii := bytes.Repeat([]byte("Login: bob\t\t\tName: Bob Example\r\nPlan: write more tests.\r\n"), 512)
	chinese := bytes.Repeat([]byte("登录名：张伟\t姓名：张伟\r\n计划：写更多的测试。\r\n"), 512)
	hostile := bytes.Repeat(fltHostile(), 8)
	b.Run("ASCII/strict", func(b *testing.B) { benchmarkFilter(b, fltStrict, ascii) })
	b.Run("ASCII/utf8", func(b *testing.B) { benchmarkFilter(b, fltUTF8, ascii) })
	b.Run("Chinese/utf8", func(b *testing.B) { benchmarkFilter(b, fltUTF8, chinese) })
	b.Run("Chinese/strict", func(b *testing.B) { benchmarkFilter(b, fltStrict, chinese) })
	b.Run("Hostile/strict", func(b *testing.B) { benchmarkFilter(b, fltStrict, hostile) })
	b.Run("Hostile/utf8", func(b *testing.B) { benchmarkFilter(b, fltUTF8, hostile) })
	b.Run("String/ASCII", func(b *testing.B) {
		s := string(ascii)
		b.ReportAllocs()
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			fltStrict.String(s)
		}
	})
}
