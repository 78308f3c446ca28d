package userinfo

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/openfinger/finger"
)

// userFilter is the server-side output filter every user-supplied field
// passes: valid UTF-8 is kept, control and escape bytes are shown escaped.
var userFilter = finger.Filter{UTF8: true}

// halfYear is netkit's threshold for showing a year instead of a time.
const halfYear = 365 * 24 * time.Hour / 2

// Time layouts of the BSD finger output (strftime "%a %b %e %R (%Z)" and
// friends).
const (
	layoutSince = "Mon Jan _2 15:04 (MST)"
	layoutYear  = "Mon Jan _2 15:04 2006 (MST)"
)

// output buffers the reply and writes it in large pieces.
type output struct {
	w   io.Writer
	b   []byte
	err error
}

const flushAt = 32 << 10

// outBufs holds reply buffers between answers: an answer is built in one
// and written in large pieces, and most answers are a few KiB.
var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// putOutBuf returns a reply buffer to outBufs, unless an answer grew it
// far past what answers usually need.
func putOutBuf(bp *[]byte) {
	if cap(*bp) > 2*flushAt {
		return
	}
	*bp = (*bp)[:0]
	outBufs.Put(bp)
}

func (o *output) str(s string) { o.b = append(o.b, s...) }

func (o *output) line(s string) {
	o.b = append(o.b, s...)
	o.b = append(o.b, '\n')
}

// maybeFlush writes the buffer once it is large.
func (o *output) maybeFlush() {
	if len(o.b) >= flushAt {
		o.flush()
	}
}

func (o *output) flush() {
	if o.err == nil && len(o.b) > 0 {
		_, o.err = o.w.Write(o.b)
	}
	o.b = o.b[:0]
}

// FormatPhone formats a GECOS phone number the way BSD finger does when it
// is made of ASCII digits only: 4 digits → x1234, 5 → x1-2345,
// 7 → 555-1234, 10 → 555-123-9876, 11 → +1-555-123-9876. Anything else is
// returned unchanged, so users keep their own formatting.
func FormatPhone(s string) string {
	if s == "" {
		return s
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return s
		}
	}
	switch len(s) {
	case 4:
		return "x" + s
	case 5:
		return "x" + s[:1] + "-" + s[1:]
	case 7:
		return s[:3] + "-" + s[3:]
	case 10:
		return s[:3] + "-" + s[3:6] + "-" + s[6:]
	case 11:
		return "+" + s[:1] + "-" + s[1:4] + "-" + s[4:7] + "-" + s[7:]
	}
	return s
}

// plainASCII reports whether s is printable ASCII only, which the filter
// passes unchanged.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// clean returns s as it may be shown on one line: filtered, with CR and LF
// shown as ^M and ^J so that a field cannot start a line of its own.
func clean(s string) string {
	if plainASCII(s) {
		return s
	}
	return string(appendCleanSlow(nil, s))
}

// appendClean appends clean(s) to dst.
func appendClean(dst []byte, s string) []byte {
	if plainASCII(s) {
		return append(dst, s...)
	}
	return appendCleanSlow(dst, s)
}

func appendCleanSlow(dst []byte, s string) []byte {
	for s != "" {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return userFilter.Append(dst, []byte(s), true)
		}
		dst = userFilter.Append(dst, []byte(s[:i]), true)
		if s[i] == '\r' {
			dst = append(dst, '^', 'M')
		} else {
			dst = append(dst, '^', 'J')
		}
		s = s[i+1:]
	}
	return dst
}

// appendText appends the filtered content of a user file: lines end in
// LF (a CR LF counts as LF), a CR that does not end a line is shown as ^M
// (it would let the rest of the line overwrite the start on a terminal),
// and the text always ends with a line end.
func appendText(dst, data []byte) []byte {
	start := len(dst)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\r')
		if i < 0 {
			dst = userFilter.Append(dst, data, true)
			break
		}
		// A CR cannot be part of a UTF-8 sequence, so each piece is final.
		dst = userFilter.Append(dst, data[:i], true)
		if i+1 >= len(data) || data[i+1] != '\n' {
			dst = append(dst, '^', 'M')
		}
		data = data[i+1:]
	}
	if len(dst) == start || dst[len(dst)-1] != '\n' {
		dst = append(dst, '\n')
	}
	return dst
}

// trimPartialRune removes an incomplete UTF-8 sequence that a size cap
// left at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			return b
		}
	}
	return b
}

// width is the number of characters of s as shown.
func width(s string) int { return utf8.RuneCountInString(s) }

// truncate returns the first n characters of s.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// appendPad appends s cut to max characters (max < 0: not cut) and padded
// with spaces to w characters, like printf's "%-w.maxs".
func appendPad(dst []byte, s string, w, max int) []byte {
	if max >= 0 {
		s = truncate(s, max)
	}
	dst = append(dst, s...)
	return appendSpaces(dst, w-width(s))
}

func appendSpaces(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, ' ')
	}
	return dst
}

// appendShortIdle appends the idle column of the short list, 5 wide:
// minutes, h:mm, or days.
func appendShortIdle(dst []byte, idle time.Duration) []byte {
	if idle < 0 {
		idle = 0
	}
	mins := int64(idle / time.Minute)
	days, hours, min := mins/(24*60), mins/60%24, mins%60
	var tmp [24]byte
	var s []byte
	switch {
	case days > 0:
		s = append(strconv.AppendInt(tmp[:0], days, 10), 'd')
	case hours > 0:
		s = strconv.AppendInt(tmp[:0], hours, 10)
		s = append(s, ':', byte('0'+min/10), byte('0'+min%10))
	case min > 0:
		s = strconv.AppendInt(tmp[:0], min, 10)
	}
	dst = appendSpaces(dst, 5-len(s))
	return append(dst, s...)
}

// shortRow is the per-user part of a short list line, already cleaned.
type shortRow struct {
	login, name, office, phone string
}

// appendShortList appends the {C} list: a header and one line per session,
// laid out as netkit finger -s does on an 80-column screen.
func appendShortList(dst []byte, people []person, pol *Policy, now time.Time, loc *time.Location) []byte {
	rows := make([]shortRow, len(people))
	maxl, maxr := 8, 8 // len("Login  ") + 1, as netkit
	for i := range people {
		a := people[i].acct
		r := shortRow{login: clean(a.Login), name: clean(a.Name)}
		if !pol.HideOffice {
			r.office = clean(a.Office)
		}
		if !pol.HidePhones {
			r.phone = clean(FormatPhone(a.OfficePhone))
		}
		maxl = max(maxl, width(r.login))
		maxr = max(maxr, width(r.name))
		rows[i] = r
	}
	const space = 80 - 50
	if maxl+maxr > space {
		maxr = max(space-maxl, 8)
	}
	if maxl+maxr < space-2 {
		maxl++
		maxr++
	}
	dst = appendPad(dst, "Login", maxl, -1)
	dst = append(dst, ' ')
	dst = appendPad(dst, "Name", maxr, -1)
	dst = append(dst, "  Tty      Idle  Login Time   Office     Office Phone\n"...)
	for i := range people {
		r := &rows[i]
		for _, s := range people[i].sessions {
			dst = appendPad(dst, r.login, maxl, maxl)
			dst = append(dst, ' ')
			dst = appendPad(dst, r.name, maxr, maxr)
			dst = append(dst, ' ')
			if s.MessagesOff {
				dst = append(dst, '*')
			} else {
				dst = append(dst, ' ')
			}
			if s.TTY != "" {
				dst = appendPad(dst, clean(s.TTY), 7, 7)
				dst = append(dst, ' ')
			} else {
				dst = appendSpaces(dst, 8)
			}
			dst = appendShortIdle(dst, s.Idle)
			dst = append(dst, "  "...)
			if s.LoginTime.IsZero() {
				dst = appendSpaces(dst, 12)
			} else {
				t := s.LoginTime.In(loc)
				dst = t.AppendFormat(dst, "Jan _2")
				if now.Sub(s.LoginTime) >= halfYear {
					dst = t.AppendFormat(dst, "  2006")
				} else {
					dst = t.AppendFormat(dst, " 15:04")
				}
			}
			if s.Host != "" && !pol.HideRemoteHost {
				dst = append(dst, " ("...)
				dst = appendClean(dst, s.Host)
				dst = append(dst, ')')
			} else {
				if r.office != "" {
					dst = append(dst, ' ')
					dst = appendPad(dst, r.office, 10, 10)
				} else if r.phone != "" {
					dst = appendSpaces(dst, 11)
				}
				if r.phone != "" {
					dst = append(dst, ' ')
					dst = append(dst, truncate(r.phone, 14)...)
				}
			}
			dst = append(dst, '\n')
		}
	}
	return dst
}

// demi lays out the office and phone fields of the long form two to a
// line, as netkit's demi_print does.
type demi struct {
	b       []byte
	odd     bool
	lenlast int
}

func (d *demi) print(s string) {
	const tab, line = 8, 80
	n := width(s)
	if d.odd {
		maxlen := 5 * tab
		if maxlen < d.lenlast {
			maxlen = d.lenlast
		}
		if (maxlen/tab+1)*tab+n <= line {
			for d.lenlast < 4*tab {
				d.b = append(d.b, '\t')
				d.lenlast += tab
			}
			d.b = append(d.b, '\t')
			d.b = append(d.b, s...)
			d.b = append(d.b, '\n')
		} else {
			d.b = append(d.b, '\n')
			d.b = append(d.b, s...)
			d.odd = !d.odd
		}
	} else {
		d.b = append(d.b, s...)
	}
	d.odd = !d.odd
	d.lenlast = n
}

// appendPlural appends "n unit " or "n units ".
func appendPlural(dst []byte, n int64, unit string) []byte {
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, ' ')
	dst = append(dst, unit...)
	if n != 1 {
		dst = append(dst, 's')
	}
	return append(dst, ' ')
}

// long appends the long form of p: account, sessions or last login, mail,
// and the user's files.
func (req *request) long(p *person) {
	a, pol := p.acct, &req.pol
	b := req.out.b

	b = append(b, "Login: "...)
	b = appendPad(b, clean(a.Login), 15, -1)
	b = append(b, "\t\t\tName: "...)
	b = appendClean(b, a.Name)
	b = append(b, '\n')
	if a.Hosted {
		req.out.b = b
		req.hostedLong(a)
		return
	}

	shell := a.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	switch {
	case !pol.HideHome && !pol.HideShell:
		b = append(b, "Directory: "...)
		b = appendPad(b, clean(a.Home), 25, -1)
		b = append(b, "\tShell: "...)
		b = appendClean(b, shell)
		b = append(b, '\n')
	case !pol.HideHome:
		b = append(b, "Directory: "...)
		b = appendClean(b, a.Home)
		b = append(b, '\n')
	case !pol.HideShell:
		b = append(b, "Shell: "...)
		b = appendClean(b, shell)
		b = append(b, '\n')
	}

	var office, rawPhone, officePhone, homePhone string
	if !pol.HideOffice {
		office = clean(a.Office)
	}
	if !pol.HidePhones {
		rawPhone = clean(a.OfficePhone)
		officePhone = clean(FormatPhone(a.OfficePhone))
		homePhone = clean(FormatPhone(a.HomePhone))
	}
	d := demi{b: b}
	if office != "" && officePhone != "" && width(office)+width(rawPhone)+len("Office")+1+2 <= 5*8 {
		d.print("Office: " + office + ", " + officePhone)
	} else {
		if office != "" {
			d.print("Office: " + office)
		}
		if officePhone != "" {
			d.print("Office Phone: " + officePhone)
		}
	}
	if homePhone != "" {
		d.print("Home Phone: " + homePhone)
	}
	b = d.b
	if d.odd {
		b = append(b, '\n')
	}

	b = req.appendSessions(b, p)
	b = req.appendLastLogin(b, p)
	b = req.appendMail(b, a)
	req.out.b = b
	req.out.maybeFlush()

	if pol.UserFiles && req.rs.Files != nil {
		req.file(a, ".pgpkey", "PGP key:\n")
		req.file(a, ".project", "Project:\n")
		if !req.file(a, ".plan", "Plan:\n") {
			req.out.str("No Plan.\n")
		}
	}
	req.out.maybeFlush()
}

// hostedLong appends the rest of the long form of a hosted user: when the
// plan last changed, and the texts, as for an account.
func (req *request) hostedLong(a *Account) {
	if !req.pol.UserFiles || req.rs.Files == nil {
		return
	}
	if f, err := req.rs.Files.ReadFile(req.ctx, a, ".plan", 1); err == nil && !f.Changed.IsZero() {
		req.out.str("Plan last changed ")
		t := f.Changed.In(req.loc)
		if req.now.Sub(f.Changed) < halfYear {
			req.out.b = t.AppendFormat(req.out.b, layoutSince)
		} else {
			req.out.b = t.AppendFormat(req.out.b, layoutYear)
		}
		req.out.str("\n")
	}
	req.file(a, ".pgpkey", "PGP key:\n")
	req.file(a, ".project", "Project:\n")
	if !req.file(a, ".plan", "Plan:\n") {
		req.out.str("No Plan.\n")
	}
	req.out.maybeFlush()
}

// appendSessions appends the "On since" lines of the long form.
func (req *request) appendSessions(b []byte, p *person) []byte {
	maxlen := 0
	for _, s := range p.sessions {
		maxlen = max(maxlen, width(clean(s.TTY)))
	}
	for _, s := range p.sessions {
		tty := clean(s.TTY)
		b = append(b, "On since "...)
		if s.LoginTime.IsZero() {
			b = append(b, "(unknown)"...)
		} else {
			b = s.LoginTime.In(req.loc).AppendFormat(b, layoutSince)
		}
		b = append(b, " on "...)
		b = append(b, tty...)
		fromHost := s.Host != "" && !req.pol.HideRemoteHost
		if fromHost {
			b = append(b, " from "...)
			b = appendClean(b, s.Host)
		}
		idle := max(s.Idle, 0)
		secs := int64(idle / time.Second)
		days, hours, mins, sec := secs/86400, secs/3600%24, secs/60%60, secs%60
		if secs > 0 {
			if fromHost {
				b = append(b, '\n')
			}
			b = appendSpaces(b, maxlen-width(tty)+3)
			if days > 0 {
				b = appendPlural(b, days, "day")
			}
			if hours > 0 {
				b = appendPlural(b, hours, "hour")
			}
			if mins > 0 && days == 0 {
				b = appendPlural(b, mins, "minute")
			}
			if sec > 0 && days == 0 && hours == 0 {
				b = appendPlural(b, sec, "second")
			}
			b = append(b, "idle"...)
		}
		if s.MessagesOff {
			if secs > 0 {
				b = append(b, "\n    "...)
			}
			b = append(b, " (messages off)"...)
		}
		b = append(b, '\n')
	}
	return b
}

// appendLastLogin appends "Last login ..." or "Never logged in." when the
// user is not logged in, or last logged in on another tty after one of the
// current sessions began (netkit's rule).
func (req *request) appendLastLogin(b []byte, p *person) []byte {
	if req.pol.HideLastLogin || req.rs.LastLogins == nil || req.ctx.Err() != nil {
		return b
	}
	ll, err := req.rs.LastLogins.LastLogin(req.ctx, p.acct)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			req.failed("lastlog", err, "login", p.acct.Login)
			return b
		}
		ll = LastLogin{}
	}
	show := len(p.sessions) == 0
	if !show && !ll.Time.IsZero() {
		for _, s := range p.sessions {
			if s.LoginTime.Before(ll.Time) {
				show = true
			}
		}
		for _, s := range p.sessions {
			if s.TTY == ll.TTY {
				show = false
			}
		}
	}
	if !show {
		return b
	}
	if ll.Time.IsZero() {
		return append(b, "Never logged in.\n"...)
	}
	b = append(b, "Last login "...)
	t := ll.Time.In(req.loc)
	if req.now.Sub(ll.Time) < halfYear {
		b = t.AppendFormat(b, layoutSince)
	} else {
		b = t.AppendFormat(b, layoutYear)
	}
	if ll.TTY != "" {
		b = append(b, " on "...)
		b = appendClean(b, ll.TTY)
	}
	if ll.Host != "" && !req.pol.HideRemoteHost {
		b = append(b, " from "...)
		b = appendClean(b, ll.Host)
	}
	return append(b, '\n')
}

// appendMail appends the mail status lines.
func (req *request) appendMail(b []byte, a *Account) []byte {
	if req.pol.HideMail || req.rs.Mailboxes == nil || req.ctx.Err() != nil {
		return b
	}
	m, err := req.rs.Mailboxes.Mail(req.ctx, a)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			req.failed("mail", err, "login", a.Login)
			return b
		}
		m = MailStatus{}
	}
	switch {
	case !m.Exists:
		b = append(b, "No mail.\n"...)
	case m.Unread:
		b = append(b, "New mail received "...)
		b = m.Received.In(req.loc).AppendFormat(b, layoutYear)
		b = append(b, "\n     Unread since "...)
		b = m.Read.In(req.loc).AppendFormat(b, layoutYear)
		b = append(b, '\n')
	default:
		b = append(b, "Mail last read "...)
		b = m.Read.In(req.loc).AppendFormat(b, layoutYear)
		b = append(b, '\n')
	}
	return b
}

// file appends a user file under its header and reports whether the file
// is published. A file longer than the cap is cut, with a notice.
func (req *request) file(a *Account, name, header string) bool {
	if req.ctx.Err() != nil {
		return false
	}
	max := req.pol.MaxFileBytes
	f, err := req.rs.Files.ReadFile(req.ctx, a, name, max)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			req.failed("files", err, "login", a.Login, "file", name)
		}
		return false
	}
	data, cut := f.Data, f.Truncated
	if int64(len(data)) > max {
		data, cut = data[:max], true
	}
	if cut {
		data = trimPartialRune(data)
	}
	req.out.str(header)
	req.out.b = appendText(req.out.b, data)
	if cut {
		req.out.str("[... truncated at ")
		req.out.b = strconv.AppendInt(req.out.b, max, 10)
		req.out.str(" bytes]\n")
	}
	req.out.maybeFlush()
	return true
}
