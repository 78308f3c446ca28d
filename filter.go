package finger

import (
	"io"
	"unicode/utf8"
)

// Filter is the output filter of RFC 1288 section 3.3, used by servers on
// what users publish and by clients on what servers send. The zero value is
// the strict RFC filter: it passes CR, LF, TAB and the bytes 0x20-0x7E, and
// shows every other byte escaped (^[ for ESC, ^? for DEL, \x9b for others),
// never dropping one silently.
type Filter struct {
	// AllowControl passes bytes below 0x20 unchanged (the RFC's first
	// switch). Ignored when UTF8 is set.
	AllowControl bool
	// AllowHigh passes bytes above 0x7E unchanged (the RFC's second
	// switch, for Chinese and other languages). Ignored when UTF8 is set.
	AllowHigh bool
	// UTF8 selects the UTF-8-safe mode: valid, printable UTF-8 passes as
	// text, while C0 and C1 controls (so every ESC, CSI, OSC and DCS
	// introducer), DEL, bidirectional overrides and invalid bytes are
	// escaped.
	UTF8 bool
}

// FilterWriter is a stream filter returned by Filter.NewWriter. It keeps an
// incomplete UTF-8 sequence at the end of one Write until the next, so a
// character split across buffers passes intact. Close flushes it.
type FilterWriter struct {
	f       Filter
	w       io.Writer
	pending []byte
	out     []byte
}

// NewWriter returns a writer that filters everything written to it into w.
func (f Filter) NewWriter(w io.Writer) *FilterWriter {
	return &FilterWriter{f: f, w: w}
}

// String filters s in one piece.
func (f Filter) String(s string) string {
	return string(f.Append(nil, []byte(s), true))
}

// Append appends the filtered form of src to dst. When final is false, an
// incomplete UTF-8 sequence at the end of src is left out; the returned
// count says how many bytes of src were consumed.
func (f Filter) Append(dst, src []byte, final bool) []byte {
	out, _ := f.appendN(dst, src, final)
	return out
}

func (f Filter) appendN(dst, src []byte, final bool) ([]byte, int) {
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\r' || c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f):
			dst = append(dst, c)
			i++
			continue
		case !f.UTF8 && c < 0x20 && f.AllowControl:
			dst = append(dst, c)
			i++
			continue
		case !f.UTF8 && c > 0x7e && f.AllowHigh:
			dst = append(dst, c)
			i++
			continue
		case f.UTF8 && c >= 0x80:
			if !final && !utf8.FullRune(src[i:]) {
				return dst, i
			}
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				dst = appendHex(dst, c)
				i++
				continue
			}
			if isUnsafeRune(r) {
				dst = append(dst, `\u`...)
				dst = append(dst, hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
			} else {
				dst = append(dst, src[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c < 0x20:
			dst = append(dst, '^', c+0x40)
		case c == 0x7f:
			dst = append(dst, '^', '?')
		default:
			dst = appendHex(dst, c)
		}
		i++
	}
	return dst, i
}

const hexDigits = "0123456789abcdef"

func appendHex(dst []byte, c byte) []byte {
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

// isUnsafeRune reports runes that must not reach a terminal as text: C1
// controls and the bidirectional embedding, override and isolate controls.
func isUnsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// Write filters p into the underlying writer. It reports len(p) consumed
// when the underlying write succeeds.
func (fw *FilterWriter) Write(p []byte) (int, error) {
	src := p
	if len(fw.pending) > 0 {
		fw.pending = append(fw.pending, p...)
		src = fw.pending
	}
	out, n := fw.f.appendN(fw.out[:0], src, false)
	fw.out = out
	rest := src[n:]
	fw.pending = append(fw.pending[:0:0], rest...)
	if len(out) > 0 {
		if _, err := fw.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Close writes any incomplete UTF-8 sequence held back, escaped. It does
// not close the underlying writer.
func (fw *FilterWriter) Close() error {
	if len(fw.pending) == 0 {
		return nil
	}
	out := fw.f.Append(fw.out[:0], fw.pending, true)
	fw.pending = nil
	_, err := fw.w.Write(out)
	return err
}
