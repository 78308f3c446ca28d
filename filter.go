package finger

import (
	"errors"
	"io"
	"unicode/utf8"
)

// Filter is the output filter of RFC 1288 section 3.3, used by servers on
// what users publish and by clients on what servers send. The zero value is
// the strict RFC filter: it passes TAB, LF, CR (see below) and the bytes
// 0x20-0x7E, and shows every other byte escaped, never dropping one
// silently:
//
//	0x00-0x1F  ^@ … ^_ (caret notation: ESC is ^[)
//	0x7F       ^?
//	0x80-0xFF  \xNN (two lower-case hex digits: \x9b)
//
// Line ends. A terminal moves back to the start of the line on a CR, so a
// lone CR would let the text after it overwrite the text before it. Unless
// control bytes are allowed, the filter therefore treats CR as a line end,
// as the netkit client does: CR LF passes unchanged, a run of CRs followed
// by LF (CR CR LF) becomes one CR LF, and a lone CR (or a run of CRs) that
// is not followed by LF becomes CR LF. A bare LF passes unchanged. A CR at
// the very end of the input becomes CR LF.
//
// Escapes are for display: the escaped form is not meant to be decoded back,
// and a literal "^[" in the input looks the same as an escaped ESC.
//
// A Filter is a small value; it is safe for concurrent use.
type Filter struct {
	// AllowControl passes bytes below 0x20 unchanged, CR included (the
	// RFC's first switch). This lets terminal escape sequences through.
	// Ignored when UTF8 is set.
	AllowControl bool
	// AllowHigh passes bytes above 0x7E unchanged (the RFC's second
	// switch, for Latin-1, Chinese and other languages). This also passes
	// DEL and the 8-bit C1 controls, such as CSI 0x9B, which some
	// terminals obey; UTF8 is the safer choice for international text.
	// Ignored when UTF8 is set.
	AllowHigh bool
	// UTF8 selects the UTF-8-safe mode: valid UTF-8 passes as text, while
	// C0 controls (so every ESC that starts a CSI, OSC or DCS sequence)
	// and DEL are escaped as in the strict mode, invalid and incomplete
	// UTF-8 is escaped byte by byte as \xNN, and the code points that must
	// not reach a terminal as text are escaped as \uNNNN (or \UNNNNNNNN):
	// the C1 controls U+0080-U+009F, the bidirectional marks, embeddings,
	// overrides and isolates (U+061C, U+200E, U+200F, U+202A-U+202E,
	// U+2066-U+2069), the line and paragraph separators U+2028 and U+2029,
	// and the invisible tag characters U+E0000-U+E007F. Other code points
	// pass, zero-width joiners (used by emoji and Indic scripts), private
	// use and unassigned ones included.
	UTF8 bool
}

// rawControl reports whether bytes below 0x20 pass unchanged.
func (f Filter) rawControl() bool { return f.AllowControl && !f.UTF8 }

// rawHigh reports whether bytes above 0x7E pass unchanged.
func (f Filter) rawHigh() bool { return f.AllowHigh && !f.UTF8 }

// plain reports the bytes every mode passes unchanged: TAB, LF and
// 0x20-0x7E.
func plain(c byte) bool { return plainTable[c] }

var plainTable = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	t['\n'], t['\t'] = true, true
	return t
}()

// String filters s in one piece. When s needs no change, String returns it
// without allocating.
func (f Filter) String(s string) string {
	if f.unchanged(s) {
		return s
	}
	dst := make([]byte, 0, len(s)+len(s)/4+8)
	dst, _ = f.appendN(dst, []byte(s), true, len(s))
	return string(dst)
}

// Append appends the filtered form of src to dst and returns the extended
// slice. When final is true, src is the whole input (or its last piece) and
// all of it is filtered. When final is false, the undecided tail of src, an
// incomplete UTF-8 sequence or a CR whose next byte is not known yet, is
// left out; use AppendPartial, which reports how much of src it consumed,
// or a FilterWriter to filter a stream.
func (f Filter) Append(dst, src []byte, final bool) []byte {
	dst, _ = f.appendN(dst, src, final, len(src))
	return dst
}

// AppendPartial is like Append and also returns how many bytes of src it
// consumed. When final is false, the bytes src[n:] (at most four) could not
// be decided yet; pass them again at the start of the next piece. When
// final is true, n is len(src).
func (f Filter) AppendPartial(dst, src []byte, final bool) (out []byte, n int) {
	return f.appendN(dst, src, final, len(src))
}

// unchanged reports whether filtering s as a whole leaves it as it is.
func (f Filter) unchanged(s string) bool { return unchanged(f, s) }

// unchangedBytes is unchanged for a byte slice, without a copy.
func (f Filter) unchangedBytes(p []byte) bool { return unchanged(f, p) }

func unchanged[S string | []byte](f Filter, s S) bool {
	rawC, rawH := f.rawControl(), f.rawHigh()
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case plain(c):
			i++
		case c == '\r' && !rawC:
			if i+1 >= len(s) || s[i+1] != '\n' {
				return false
			}
			i += 2
		case c < 0x20:
			if !rawC {
				return false
			}
			i++
		case c >= 0x7f && rawH:
			i++
		case c >= 0x80 && f.UTF8:
			var b [utf8.UTFMax]byte
			r, n := utf8.DecodeRune(b[:copy(b[:], s[i:])])
			if r == utf8.RuneError && n <= 1 || unsafeRune(r) {
				return false
			}
			i += n
		default:
			return false
		}
	}
	return true
}

// appendN filters src into dst. It stops consuming once it has consumed
// limit bytes (a character that straddles the limit is finished), and,
// when final is false, before an undecided tail. It returns the extended
// dst and the number of bytes of src consumed.
func (f Filter) appendN(dst, src []byte, final bool, limit int) ([]byte, int) {
	rawC, rawH := f.rawControl(), f.rawHigh()
	if limit > len(src) {
		limit = len(src)
	}
	i := 0
	for i < limit {
		// Copy a run of plain bytes in one call.
		j := i
		for j < limit && plain(src[j]) {
			j++
		}
		if j > i {
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		c := src[i]
		switch {
		case c == '\r' && !rawC:
			if i+1 == len(src) {
				if !final {
					return dst, i
				}
				dst = append(dst, '\r', '\n')
				i++
				continue
			}
			switch src[i+1] {
			case '\r':
				// A run of CRs is one line end, written by its last CR.
				i++
			case '\n':
				dst = append(dst, '\r', '\n')
				i += 2
			default:
				dst = append(dst, '\r', '\n')
				i++
			}
		case c < 0x20:
			if rawC {
				dst = append(dst, c)
			} else {
				dst = append(dst, '^', c+0x40)
			}
			i++
		case c >= 0x7f && rawH:
			dst = append(dst, c)
			i++
		case c == 0x7f:
			dst = append(dst, '^', '?')
			i++
		case f.UTF8:
			if !final && !utf8.FullRune(src[i:]) {
				return dst, i
			}
			r, n := utf8.DecodeRune(src[i:])
			switch {
			case r == utf8.RuneError && n <= 1:
				dst = appendHex(dst, c)
			case unsafeRune(r):
				dst = appendRuneEscape(dst, r)
			default:
				dst = append(dst, src[i:i+n]...)
			}
			i += n
		default:
			dst = appendHex(dst, c)
			i++
		}
	}
	return dst, i
}

const hexDigits = "0123456789abcdef"

func appendHex(dst []byte, c byte) []byte {
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendRuneEscape appends r as \uNNNN, or \UNNNNNNNN beyond U+FFFF.
func appendRuneEscape(dst []byte, r rune) []byte {
	digits := 4
	if r > 0xffff {
		dst = append(dst, '\\', 'U')
		digits = 8
	} else {
		dst = append(dst, '\\', 'u')
	}
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[r>>shift&0xf])
	}
	return dst
}

// unsafeRune reports the code points the UTF-8 mode escapes although they
// are valid UTF-8: C1 controls, bidirectional controls, the line and
// paragraph separators, and tag characters.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x2028 && r <= 0x202e: // U+2028, U+2029, then LRE … RLO
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	case r >= 0xe0000 && r <= 0xe007f:
		return true
	}
	return false
}

// writeChunk is how many input bytes a FilterWriter filters at a time, so
// its buffer stays small whatever the size of a Write.
const writeChunk = 4096

// errFilterClosed is returned by FilterWriter.Write after Close.
var errFilterClosed = errors.New("finger: write to closed FilterWriter")

// FilterWriter is a stream filter returned by Filter.NewWriter. Its output
// is the same however the input is split between Writes: it holds back an
// incomplete UTF-8 sequence or a trailing CR (at most four bytes) until the
// next Write decides it, and Close flushes what is held back. Its memory
// use does not grow with the size of the input or of a Write.
type FilterWriter struct {
	f      Filter
	w      io.Writer
	held   [utf8.UTFMax]byte
	nheld  int
	out    []byte
	err    error // first error from w, returned by every later call
	closed bool
}

// NewWriter returns a writer that filters everything written to it into w.
// Call Close at the end of the input.
func (f Filter) NewWriter(w io.Writer) *FilterWriter {
	return &FilterWriter{f: f, w: w}
}

// Write filters p into the underlying writer. It returns len(p) and a nil
// error, or the error of the underlying writer with the number of bytes of
// p whose filtered form was written before it. After an error, every Write
// and Close returns that error.
func (fw *FilterWriter) Write(p []byte) (int, error) {
	if fw.err != nil {
		return 0, fw.err
	}
	if fw.closed {
		return 0, errFilterClosed
	}
	total := len(p)
	if fw.nheld > 0 {
		// Complete the held-back tail with the first bytes of p.
		var tmp [2 * utf8.UTFMax]byte
		k := copy(tmp[:], fw.held[:fw.nheld])
		m := copy(tmp[k:], p)
		out, used := fw.f.appendN(fw.out[:0], tmp[:k+m], false, k+m)
		fw.out = out
		if used < k {
			// Still undecided (p is shorter than the rest of the
			// sequence): hold it all.
			fw.nheld = copy(fw.held[:], tmp[used:k+m])
			return total, nil
		}
		fw.nheld = 0
		if err := fw.flush(); err != nil {
			return 0, err
		}
		p = p[used-k:]
	}
	if len(p) > 0 && fw.f.unchangedBytes(p) {
		// Fast path: nothing to change, write p itself.
		m, err := fw.w.Write(p)
		if err == nil && m < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			fw.err = err
			return total - len(p), err
		}
		return total, nil
	}
	for len(p) > 0 {
		out, used := fw.f.appendN(fw.out[:0], p, false, writeChunk)
		fw.out = out
		if used == 0 {
			fw.nheld = copy(fw.held[:], p)
			break
		}
		if err := fw.flush(); err != nil {
			return total - len(p), err
		}
		p = p[used:]
	}
	return total, nil
}

// flush writes fw.out to the underlying writer.
func (fw *FilterWriter) flush() error {
	if len(fw.out) == 0 {
		return nil
	}
	m, err := fw.w.Write(fw.out)
	if err == nil && m < len(fw.out) {
		err = io.ErrShortWrite
	}
	fw.out = fw.out[:0]
	if err != nil {
		fw.err = err
	}
	return err
}

// Close filters what is held back as the end of the input: an incomplete
// UTF-8 sequence is escaped byte by byte, a trailing CR becomes CR LF. It
// does not close the underlying writer. Write after Close is an error;
// Close may be called again and then does nothing.
func (fw *FilterWriter) Close() error {
	if fw.err != nil {
		return fw.err
	}
	fw.closed = true
	if fw.nheld == 0 {
		return nil
	}
	fw.out, _ = fw.f.appendN(fw.out[:0], fw.held[:fw.nheld], true, fw.nheld)
	fw.nheld = 0
	return fw.flush()
}
