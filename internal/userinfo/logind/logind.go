// Package logind is a userinfo.Sessions source that asks systemd-logind, over
// the D-Bus system bus, who is logged in.
//
// Sessions lists the sessions with org.freedesktop.login1.Manager.ListSessions
// and reads the properties of each with one
// org.freedesktop.DBus.Properties.GetAll call. Only interactive user sessions
// are reported: sessions of class "user" (and the "user-early" and
// "user-light" variants of newer logind versions); greeters, lock screens,
// service managers, background sessions (cron) and sessions in state
// "closing" (the user logged out, processes linger) are skipped. At most
// MaxSessions sessions (DefaultMaxSessions, 4096, by default) are read per
// query; the rest are ignored.
//
// Every D-Bus call, including connecting to the bus, is bounded both by the
// caller's context and by Timeout. The connection is opened on first use and
// kept; when the bus connection is lost (dbus-daemon restarted) the query in
// flight fails and the next query connects again. If logind goes away in the
// middle of a query the bus answers the pending call with an error, which is
// returned.
//
// Calls are sent with the "no auto start" flag: a finger query never starts
// logind through bus activation. When the bus cannot be reached or
// org.freedesktop.login1 has no owner, the error wraps ErrUnavailable;
// Fallback uses that to fall back to another source (utmp).
package logind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/openfinger/finger/internal/userinfo"
)

// Defaults used when the corresponding Sessions field is zero.
const (
	// DefaultSystemBusAddress is the system bus when neither Address nor
	// DBUS_SYSTEM_BUS_ADDRESS says otherwise.
	DefaultSystemBusAddress = "unix:path=/run/dbus/system_bus_socket"
	// DefaultTimeout bounds each D-Bus call and the connection set-up.
	DefaultTimeout = 2 * time.Second
	// DefaultDev is where the session terminals are looked up.
	DefaultDev = "/dev"
	// DefaultMaxSessions caps the number of sessions read per query.
	DefaultMaxSessions = 4096
)

// D-Bus names used by logind.
const (
	busName        = "org.freedesktop.login1"
	managerPath    = dbus.ObjectPath("/org/freedesktop/login1")
	managerIface   = "org.freedesktop.login1.Manager"
	sessionIface   = "org.freedesktop.login1.Session"
	propertiesIfce = "org.freedesktop.DBus.Properties"
)

// maxInFlight is how many GetAll calls are pipelined on the connection at
// once.
const maxInFlight = 32

// ErrUnavailable is wrapped by the errors of Sessions when logind cannot be
// asked at all: the bus cannot be reached, or no process owns
// org.freedesktop.login1 on it.
var ErrUnavailable = errors.New("logind: service not available")

// Sessions reads the current login sessions from systemd-logind. The zero
// value is ready to use and talks to the system bus. A Sessions is safe for
// concurrent use; its fields must not be changed after first use. Call Close
// to release the bus connection.
type Sessions struct {
	// Address is the D-Bus address of the bus logind is on. Empty means
	// the system bus: $DBUS_SYSTEM_BUS_ADDRESS, else
	// DefaultSystemBusAddress.
	Address string
	// Timeout bounds each D-Bus call (and connecting to the bus); zero
	// means DefaultTimeout. The caller's context applies as well.
	Timeout time.Duration
	// Dev is the directory holding the terminals named by logind's TTY
	// property; zero means DefaultDev. A terminal's access time gives the
	// idle time and its group-write bit whether messages are accepted.
	Dev string
	// MaxSessions caps the number of sessions read per query; zero means
	// DefaultMaxSessions.
	MaxSessions int

	// lock serialises connecting; a channel so that waiting honours the
	// caller's context.
	lockOnce sync.Once
	lock     chan struct{}
	mu       sync.Mutex // guards conn
	conn     *dbus.Conn
}

var _ userinfo.Sessions = (*Sessions)(nil)

func (s *Sessions) address() string {
	if s.Address != "" {
		return s.Address
	}
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return DefaultSystemBusAddress
}

func (s *Sessions) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Sessions) dev() string {
	if s.Dev != "" {
		return s.Dev
	}
	return DefaultDev
}

func (s *Sessions) maxSessions() int {
	if s.MaxSessions > 0 {
		return s.MaxSessions
	}
	return DefaultMaxSessions
}

// current returns the open connection, or nil.
func (s *Sessions) current() *dbus.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.conn.Connected() {
		s.conn.Close()
		s.conn = nil
	}
	return s.conn
}

// drop forgets c if it is still the current connection and closes it.
func (s *Sessions) drop(c *dbus.Conn) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.mu.Unlock()
	c.Close()
}

// connection returns the connection to the bus, connecting when there is
// none (or the previous one was lost).
func (s *Sessions) connection(ctx context.Context) (*dbus.Conn, error) {
	if c := s.current(); c != nil {
		return c, nil
	}
	s.lockOnce.Do(func() { s.lock = make(chan struct{}, 1) })
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("logind: connect to bus: %w", ctx.Err())
	}
	defer func() { <-s.lock }()
	// Another query may have connected while this one waited.
	if c := s.current(); c != nil {
		return c, nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	c, err := connect(cctx, s.address())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	return c, nil
}

// connect opens and authenticates a private connection to the bus at addr,
// giving up when ctx ends. A bus that accepts the socket but never answers
// the handshake cannot hold the caller: the half-open connection is closed.
func connect(ctx context.Context, addr string) (*dbus.Conn, error) {
	type result struct {
		c   *dbus.Conn
		err error
	}
	done := make(chan result, 1)
	var (
		mu        sync.Mutex
		pending   *dbus.Conn
		abandoned bool
	)
	go func() {
		c, err := dbus.Dial(addr)
		if err != nil {
			done <- result{nil, err}
			return
		}
		mu.Lock()
		if abandoned {
			mu.Unlock()
			c.Close()
			done <- result{nil, context.Canceled}
			return
		}
		pending = c
		mu.Unlock()
		if err = c.Auth(nil); err == nil {
			err = c.Hello()
		}
		if err != nil {
			c.Close()
			done <- result{nil, err}
			return
		}
		done <- result{c, nil}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("logind: connect to bus %s: %w: %w", addr, ErrUnavailable, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		if pending != nil {
			pending.Close()
		}
		mu.Unlock()
		// The handshake may still complete; close what it yields.
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("logind: connect to bus %s: %w", addr, ctx.Err())
	}
}

// Close closes the bus connection, if any. The Sessions stays usable: the
// next query connects again.
func (s *Sessions) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// call makes one method call bounded by ctx and Timeout.
func (s *Sessions) call(ctx context.Context, obj dbus.BusObject, method string, args ...any) *dbus.Call {
	cctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	return obj.CallWithContext(cctx, method, dbus.FlagNoAutoStart, args...)
}

// Available reports whether logind answers: the bus can be reached and
// org.freedesktop.login1 has an owner on it.
func (s *Sessions) Available(ctx context.Context) bool {
	c, err := s.connection(ctx)
	if err != nil {
		return false
	}
	var owned bool
	err = s.call(ctx, c.BusObject(), "org.freedesktop.DBus.NameHasOwner", busName).Store(&owned)
	if err != nil {
		if !c.Connected() {
			s.drop(c)
		}
		return false
	}
	return owned
}

// listed is one entry of ListSessions' reply.
type listed struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

// Sessions implements userinfo.Sessions. The sessions are sorted by login,
// then login time, then terminal.
//
// Each Session is filled from logind's properties: Login from Name, Host
// from RemoteHost, LoginTime from Timestamp. TTY is the TTY property
// (without "/dev/"), else the seat id, else "" (an ssh session without a
// terminal). With a terminal that exists under Dev, Idle is the time since
// its last access and MessagesOff is set when it is not group-writable;
// otherwise Idle is the time since IdleSinceHint when IdleHint is set, and
// unknown (-1) when not, and MessagesOff is false. A session that ends
// between ListSessions and reading its properties is left out.
func (s *Sessions) Sessions(ctx context.Context) ([]userinfo.Session, error) {
	c, err := s.connection(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.list(ctx, c)
	if err != nil {
		return nil, s.fail(c, "ListSessions", err)
	}
	if max := s.maxSessions(); len(list) > max {
		list = list[:max]
	}
	props, err := s.getAll(ctx, c, list)
	if err != nil {
		return nil, s.fail(c, "GetAll", err)
	}
	now := time.Now()
	dev := s.dev()
	out := make([]userinfo.Session, 0, len(list))
	for i, l := range list {
		if props[i] == nil {
			continue // the session ended meanwhile
		}
		if se, ok := convert(l, props[i], dev, now); ok {
			out = append(out, se)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Login != b.Login {
			return a.Login < b.Login
		}
		if !a.LoginTime.Equal(b.LoginTime) {
			return a.LoginTime.Before(b.LoginTime)
		}
		return a.TTY < b.TTY
	})
	return out, nil
}

func (s *Sessions) list(ctx context.Context, c *dbus.Conn) ([]listed, error) {
	var list []listed
	err := s.call(ctx, c.Object(busName, managerPath), managerIface+".ListSessions").Store(&list)
	return list, err
}

// fail turns err from method into the error returned to the caller, and
// forgets c when the connection was lost.
func (s *Sessions) fail(c *dbus.Conn, method string, err error) error {
	if !c.Connected() {
		s.drop(c)
		return fmt.Errorf("logind: %s: bus connection lost: %w", method, err)
	}
	if unavailable(err) {
		return fmt.Errorf("logind: %s: %w: %w", method, ErrUnavailable, err)
	}
	return fmt.Errorf("logind: %s: %w", method, err)
}

// errName returns the D-Bus error name carried by err, or "".
func errName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var pde *dbus.Error
	if errors.As(err, &pde) && pde != nil {
		return pde.Name
	}
	return ""
}

// unavailable reports whether err is the bus saying that nobody provides
// org.freedesktop.login1.
func unavailable(err error) bool {
	switch name := errName(err); name {
	case "org.freedesktop.DBus.Error.ServiceUnknown",
		"org.freedesktop.DBus.Error.NameHasNoOwner":
		return true
	default:
		return strings.HasPrefix(name, "org.freedesktop.DBus.Error.Spawn.")
	}
}

// gone reports whether err says the session object no longer exists: it
// ended between ListSessions and GetAll.
func gone(err error) bool {
	switch errName(err) {
	case "org.freedesktop.DBus.Error.UnknownObject",
		"org.freedesktop.DBus.Error.UnknownInterface",
		"org.freedesktop.DBus.Error.UnknownMethod",
		"org.freedesktop.login1.NoSuchSession":
		return true
	}
	return false
}

// getAll reads the session properties of every listed session, pipelining
// up to maxInFlight calls. A session that ended meanwhile gets a nil map.
func (s *Sessions) getAll(ctx context.Context, c *dbus.Conn, list []listed) ([]map[string]dbus.Variant, error) {
	out := make([]map[string]dbus.Variant, len(list))
	if len(list) == 0 {
		return out, nil
	}
	type pending struct {
		i      int
		cancel context.CancelFunc
	}
	done := make(chan *dbus.Call, maxInFlight)
	inFlight := make(map[*dbus.Call]pending, maxInFlight)
	defer func() {
		for _, p := range inFlight {
			p.cancel()
		}
	}()
	next := 0
	for next < len(list) || len(inFlight) > 0 {
		for next < len(list) && len(inFlight) < maxInFlight {
			cctx, cancel := context.WithTimeout(ctx, s.timeout())
			call := c.Object(busName, list[next].Path).GoWithContext(cctx,
				propertiesIfce+".GetAll", dbus.FlagNoAutoStart, done, sessionIface)
			inFlight[call] = pending{next, cancel}
			next++
		}
		call := <-done
		p, ok := inFlight[call]
		if !ok {
			continue
		}
		delete(inFlight, call)
		p.cancel()
		if call.Err != nil {
			if gone(call.Err) {
				continue
			}
			return nil, call.Err
		}
		var m map[string]dbus.Variant
		if err := call.Store(&m); err != nil {
			return nil, err
		}
		out[p.i] = m
	}
	return out, nil
}

// convert builds a Session from an entry of ListSessions and the session's
// properties. ok is false for sessions that are not reported (not an
// interactive user session, or closing).
func convert(l listed, props map[string]dbus.Variant, dev string, now time.Time) (se userinfo.Session, ok bool) {
	if !userClass(propString(props, "Class")) {
		return se, false
	}
	if propString(props, "State") == "closing" {
		return se, false
	}
	se.Login = propString(props, "Name")
	if se.Login == "" {
		se.Login = l.User
	}
	if se.Login == "" {
		return se, false
	}
	se.Host = propString(props, "RemoteHost")
	if ts, ok := propUint64(props, "Timestamp"); ok && ts > 0 {
		se.LoginTime = usec(ts)
	}
	se.Idle = -1

	tty := strings.TrimPrefix(propString(props, "TTY"), "/dev/")
	if tty != "" {
		se.TTY = tty
		if fi, err := statTTY(dev, tty); err == nil {
			se.Idle = idleSince(now, atime(fi))
			se.MessagesOff = fi.Mode().Perm()&0o020 == 0
			return se, true
		}
	} else {
		se.TTY = propSeat(props)
		if se.TTY == "" {
			se.TTY = l.Seat
		}
	}
	if hint, _ := propBool(props, "IdleHint"); hint {
		if since, ok := propUint64(props, "IdleSinceHint"); ok && since > 0 {
			se.Idle = idleSince(now, usec(since))
		}
	}
	return se, true
}

// userClass reports whether a session class is an interactive user
// session.
func userClass(class string) bool {
	switch class {
	case "user", "user-early", "user-light":
		return true
	}
	return false
}

// statTTY stats the terminal tty (a name like "pts/3") under dev, without
// following symbolic links.
func statTTY(dev, tty string) (os.FileInfo, error) {
	if !filepath.IsLocal(tty) {
		return nil, fmt.Errorf("logind: unusable tty name %q", tty)
	}
	fi, err := os.Lstat(filepath.Join(dev, tty))
	if err != nil {
		return nil, err
	}
	if fi.IsDir() || fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("logind: %s is not a terminal", tty)
	}
	return fi, nil
}

func idleSince(now, t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	d := now.Sub(t)
	if d < 0 {
		return 0
	}
	return d
}

// usec converts microseconds since the epoch (CLOCK_REALTIME, as logind
// reports timestamps) to a time.
func usec(u uint64) time.Time {
	if u > 1<<62 {
		return time.Time{}
	}
	return time.UnixMicro(int64(u))
}

func propString(props map[string]dbus.Variant, name string) string {
	v, ok := props[name]
	if !ok {
		return ""
	}
	s, _ := v.Value().(string)
	return s
}

func propBool(props map[string]dbus.Variant, name string) (bool, bool) {
	v, ok := props[name]
	if !ok {
		return false, false
	}
	b, ok := v.Value().(bool)
	return b, ok
}

func propUint64(props map[string]dbus.Variant, name string) (uint64, bool) {
	v, ok := props[name]
	if !ok {
		return 0, false
	}
	switch n := v.Value().(type) {
	case uint64:
		return n, true
	case uint32:
		return uint64(n), true
	case int64:
		if n >= 0 {
			return uint64(n), true
		}
	}
	return 0, false
}

// propSeat returns the seat id from the Seat property, a (so) structure.
func propSeat(props map[string]dbus.Variant) string {
	v, ok := props["Seat"]
	if !ok {
		return ""
	}
	switch st := v.Value().(type) {
	case []any:
		if len(st) > 0 {
			id, _ := st[0].(string)
			return id
		}
	case string:
		return st
	}
	return ""
}

// Fallback is a userinfo.Sessions that asks Primary (normally a *Sessions)
// and, when Primary's error wraps ErrUnavailable, asks Secondary instead
// (normally the utmp source). Other errors of Primary are returned as they
// are. With a nil Secondary an unavailable Primary yields an empty list, as
// for a host without any session source.
//
// Once Primary was unavailable, Fallback goes straight to Secondary for the
// Retry period before asking Primary again, so that a host without logind
// does not pay a failed bus connection on every query.
type Fallback struct {
	Primary, Secondary userinfo.Sessions
	// Retry is how long an unavailable Primary is left alone: 0 means
	// DefaultRetry, negative means Primary is asked every time.
	Retry time.Duration

	skipUntil atomic.Int64 // UnixNano before which Primary is not asked
}

// DefaultRetry is Fallback's Retry when it is zero.
const DefaultRetry = 10 * time.Second

var _ userinfo.Sessions = (*Fallback)(nil)

// Sessions implements userinfo.Sessions.
func (f *Fallback) Sessions(ctx context.Context) ([]userinfo.Session, error) {
	if f.Primary != nil && time.Now().UnixNano() >= f.skipUntil.Load() {
		ss, err := f.Primary.Sessions(ctx)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			return ss, err
		}
		retry := f.Retry
		if retry == 0 {
			retry = DefaultRetry
		}
		if retry > 0 {
			f.skipUntil.Store(time.Now().Add(retry).UnixNano())
		}
	}
	if f.Secondary == nil {
		return []userinfo.Session{}, nil
	}
	return f.Secondary.Sessions(ctx)
}
