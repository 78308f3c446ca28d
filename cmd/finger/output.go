package main

import (
	"io"
)

// lineWriter turns the reply's line ends into the terminal's: CR LF, a run
// of CRs before LF and a lone run of CRs each become one LF (the filter's
// rule, applied here too when control bytes pass raw), so a server cannot
// overwrite a line already shown by returning the cursor. It remembers whether the last byte written was
// LF so the reply can be ended with a newline when the server's was not.
type lineWriter struct {
	w       io.Writer
	cr      bool // the previous Write ended with a CR not yet written
	started bool // something was written
	atEOL   bool // the last byte written was LF
	buf     []byte
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	out := lw.buf[:0]
	for _, c := range p {
		if lw.cr && c == '\r' {
			continue
		}
		if lw.cr {
			lw.cr = false
			out = append(out, '\n')
			if c == '\n' {
				continue
			}
		}
		if c == '\r' {
			lw.cr = true
			continue
		}
		out = append(out, c)
	}
	lw.buf = out
	if len(out) > 0 {
		lw.started = true
		lw.atEOL = out[len(out)-1] == '\n'
		if _, err := lw.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// finish writes a CR held back and, when the reply did not end with a
// line end, a newline.
func (lw *lineWriter) finish() error {
	if lw.cr || (lw.started && !lw.atEOL) {
		lw.cr = false
		lw.started, lw.atEOL = true, true
		_, err := lw.w.Write([]byte{'\n'})
		return err
	}
	return nil
}
