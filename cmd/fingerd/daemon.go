package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/limit"
	"github.com/openfinger/finger/internal/metrics"
	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/hosted"
)

// shutdownTimeout bounds the wait for queries in progress when the daemon
// stops, and for the previous configuration's queries after a reload.
const shutdownTimeout = 10 * time.Second

// A daemon serves finger connections accepted on its listeners. Each
// configuration it loads becomes a generation: its own finger.Server
// (handler, limits, timeouts), rate limiter and PROXY policy. The accept
// loops hand each connection to the current generation; a reload swaps in
// a new one and lets the old one finish its connections, so no connection
// is dropped and every connection sees one consistent configuration.
type daemon struct {
	opts    *options
	log     *slog.Logger
	metrics *metrics.Metrics
	mode    string
	// readerStderr is the home reader's standard error (nil: /dev/null).
	readerStderr io.Writer
	homes        *homeReader // nil: the serving process reads the homes itself

	cur   atomic.Pointer[generation]
	fatal chan error

	// Hosted users, when [store] url is set: one store and one copy of
	// the directory for the daemon's life, shared by every generation.
	hosted     *hosted.Source
	store      store.Store
	hostedDone chan struct{}

	listeners []net.Listener
	accepting sync.WaitGroup
	retiring  sync.WaitGroup // generations replaced by a reload, finishing
	stopping  atomic.Bool
}

// generation is everything built from one configuration.
type generation struct {
	cfg     *config.Config
	srv     *finger.Server
	proxy   *proxyPolicy    // nil: no PROXY protocol
	overlay *hosted.Overlay // nil without hosted users
	release func()
}

// newGeneration builds the handler, limiter and server for cfg.
func (d *daemon) newGeneration(cfg *config.Config) (*generation, error) {
	h, ov, release, err := buildHandler(cfg, d.log, d.files(cfg), d.metrics, d.hosted)
	if err != nil {
		return nil, err
	}
	lim := &limit.Limiter{Rate: cfg.Server.Rate, Burst: cfg.Server.Burst}
	s := cfg.Server
	srv := &finger.Server{
		Handler:        h,
		ReadTimeout:    s.ReadTimeout.D(),
		WriteTimeout:   s.WriteTimeout.D(),
		ConnTimeout:    s.ConnTimeout.D(),
		MaxQueryBytes:  s.MaxQueryBytes,
		MaxConns:       s.MaxConns,
		MaxConnsPerIP:  s.MaxConnsPerIP,
		MaxConnsPerNet: s.MaxConnsPerNet,
		Admit:          lim.Admit,
		Logger:         d.log,
		Observe:        d.observe,
	}
	if d.metrics == nil {
		srv.Observe = nil
	}
	g := &generation{cfg: cfg, srv: srv, overlay: ov, release: release}
	if len(s.ProxyFrom) > 0 {
		g.proxy = newProxyPolicy(s.ProxyFrom, s.ProxyHeaderTimeout.D())
	}
	return g, nil
}

// start serves g and runs one accept loop per listener.
func (d *daemon) start(g *generation, ls []net.Listener) {
	d.fatal = make(chan error, len(ls))
	d.listeners = ls
	d.cur.Store(g)
	for _, l := range ls {
		d.accepting.Add(1)
		go func() {
			defer d.accepting.Done()
			if err := d.acceptLoop(l); err != nil {
				d.fatal <- err
			}
		}()
	}
}

func (d *daemon) acceptLoop(l net.Listener) error {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if d.stopping.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				d.log.Warn("fingerd: accept error; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		d.dispatch(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// dispatch hands c to the current generation.
func (d *daemon) dispatch(c net.Conn) {
	for {
		g := d.cur.Load()
		wc := d.wrap(g, c)
		if g.srv.ServeAccepted(wc) {
			return
		}
		// g was replaced while we held it: the next Load sees its
		// successor. After stop there is none: close.
		if d.stopping.Load() {
			c.Close()
			return
		}
		d.metrics.ConnClosed() // wrap counts it again
	}
}

// wrap applies the generation's PROXY policy and counts the connection
// (observe counts it closed). Only a connection from a load balancer is
// read for a PROXY header; the server counts it against its caps before
// reading it (finger.HeaderConn). Any other is handed over as accepted,
// so that the server reads its query straight from the socket.
func (d *daemon) wrap(g *generation, c net.Conn) net.Conn {
	d.metrics.ConnOpened()
	if g.proxy != nil && g.proxy.allowed(c.RemoteAddr()) {
		return g.proxy.wrap(c)
	}
	return c
}

// observe is the server's Observe hook: the connection is closed, and its
// record is counted.
func (d *daemon) observe(r finger.Record) {
	d.metrics.ConnClosed()
	d.metrics.Observe(r)
}

// serveOne serves a single connection: inetd mode and socket activation
// with Accept=yes.
func (d *daemon) serveOne(ctx context.Context, cfg *config.Config, c net.Conn, mode string) error {
	d.mode = mode
	if err := d.startHomes(cfg, nil); err != nil {
		c.Close()
		return err
	}
	defer d.stopHomes()
	g, err := d.newGeneration(cfg)
	if err != nil {
		c.Close()
		return err
	}
	defer g.release()
	if err := d.confine(cfg); err != nil {
		c.Close()
		return err
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.startHosted(hctx, cfg); err != nil {
		c.Close()
		return err
	}
	defer func() { cancel(); d.stopHosted() }()
	conn := d.wrap(g, c)
	d.log.Debug("fingerd: serving one connection", "mode", mode)
	g.srv.ServeConn(ctx, conn)
	return nil
}

// startHomes starts the home reader when cfg asks for it and fingerd runs
// as root. failed, when not nil, receives the error if the reader stops
// answering.
func (d *daemon) startHomes(cfg *config.Config, failed chan<- error) error {
	if !usesHomeReader(cfg) {
		return nil
	}
	if !privilege.CanKeepDACReadSearch() {
		// A container or unit that withholds the capability: fingerd
		// serves, reading the homes with its own permissions, and says so
		// (and, after the drop, how many homes it cannot search).
		d.log.Warn("fingerd: CAP_DAC_READ_SEARCH is not in the capability bounding set; no home reader, homes of mode 0700 cannot be searched")
		return nil
	}
	r, err := startHomeReader(cfg, d.readerStderr)
	if err != nil {
		return err
	}
	r.client.OnFailure = func(err error) {
		d.log.Error("fingerd: the home reader stopped answering; users are hidden until fingerd restarts", "err", err)
		if failed != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	d.homes = r
	return nil
}

// stopHomes stops the home reader, if any.
func (d *daemon) stopHomes() {
	if d.homes != nil {
		d.homes.close()
	}
}

// files returns the source of the users' files for cfg: the home reader
// when it runs, else nil (hostusers reads them with this process's
// privileges).
func (d *daemon) files(cfg *config.Config) userinfo.Files {
	if d.homes == nil {
		return nil
	}
	return d.homes.client.Files(cfg.Policy.HideUnreadableHomes)
}

// reload reads the configuration again and, if it is valid, makes it
// current. A bad configuration is logged and the running one kept.
// Settings that need a restart (addresses, user, sandbox, metrics
// address) are reported and otherwise ignored.
func (d *daemon) reload() {
	old := d.cur.Load()
	cfg, err := loadConfig(d.opts)
	if err == nil {
		restartOnly(old.cfg, cfg, d.log)
		var g *generation
		if g, err = d.newGeneration(cfg); err == nil {
			d.cur.Store(g)
			d.retiring.Add(1)
			go func() {
				defer d.retiring.Done()
				retire(old)
			}()
			// Logged before it is counted: whoever sees the count sees
			// the log line too.
			d.log.Info("fingerd: reloaded", "config", describeSource(cfg))
			d.metrics.Reloaded(nil)
			return
		}
	}
	d.log.Error("fingerd: reload failed; keeping the running configuration", "err", err)
	d.metrics.Reloaded(err)
}

// retire stops a replaced generation once its connections are done.
func retire(g *generation) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Server.ConnTimeout.D()+time.Second)
	defer cancel()
	g.srv.Shutdown(ctx)
	g.release()
}

// restartOnly logs the changed settings that take effect only at restart.
func restartOnly(old, cur *config.Config, log *slog.Logger) {
	changed := func(key string) {
		log.Warn("fingerd: setting changed; it takes effect at restart", "key", key)
	}
	if !equalStrings(old.Server.Listen, cur.Server.Listen) {
		changed("server.listen")
	}
	if old.Server.User != cur.Server.User || old.Server.Group != cur.Server.Group {
		changed("server.user")
	}
	if old.Server.KeepDACReadSearch != cur.Server.KeepDACReadSearch {
		changed("server.keep_dac_read_search")
	}
	if old.Server.Landlock != cur.Server.Landlock {
		changed("server.landlock")
	}
	if old.Metrics.Listen != cur.Metrics.Listen {
		changed("metrics.listen")
	}
	if old.Store != cur.Store {
		changed("store")
	}
	if old.Web != cur.Web {
		changed("web")
	}
	if old.Server.Landlock && !equalStrings(programPaths(old), programPaths(cur)) {
		// The Landlock view, fixed at start, covers the programs known
		// then: a program added since cannot run before a restart.
		changed("virtual.program")
	}
	if old.Log != cur.Log {
		changed("log")
	}
}

// programPaths lists the programs cfg may run.
func programPaths(cfg *config.Config) []string {
	var ps []string
	if !cfg.Programs.Enabled {
		return ps
	}
	for _, u := range cfg.Virtual {
		if len(u.Program) > 0 && !slices.Contains(ps, u.Program[0]) {
			ps = append(ps, u.Program[0])
		}
	}
	slices.Sort(ps)
	return ps
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// stop closes the listeners and waits, within shutdownTimeout, for the
// queries in progress.
func (d *daemon) stop() error {
	d.stopping.Store(true)
	closeAll(d.listeners)
	d.accepting.Wait()
	g := d.cur.Load()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := g.srv.Shutdown(ctx)
	g.release()
	// Generations replaced by reloads finish within the same bound.
	retired := make(chan struct{})
	go func() {
		d.retiring.Wait()
		close(retired)
	}()
	select {
	case <-retired:
	case <-ctx.Done():
	}
	if errors.Is(err, context.DeadlineExceeded) {
		d.log.Warn("fingerd: queries still running at shutdown were cut off")
		return nil
	}
	return err
}

// proxyPolicy accepts a PROXY protocol header (v1 or v2) only from the
// configured load balancers: only their connections are read for one, on
// the finger listeners and on the web listener alike. Connections from
// anyone else are served as they come, so a header they send is a query
// (or an HTTP request) like any other. A load balancer's connection
// without a header is served under the balancer's address.
type proxyPolicy struct {
	from    []netip.Prefix
	timeout time.Duration
}

func newProxyPolicy(from []string, timeout time.Duration) *proxyPolicy {
	p := &proxyPolicy{timeout: timeout}
	for _, s := range from {
		if pr, err := config.ParsePrefix(s); err == nil {
			p.from = append(p.from, pr)
		}
	}
	return p
}

func (p *proxyPolicy) allowed(a net.Addr) bool {
	ip, ok := limit.AddrOf(a)
	if !ok {
		return false
	}
	for _, pr := range p.from {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

// reader returns a load balancer's connection c reading its PROXY header,
// if any, on first use.
func (p *proxyPolicy) reader(c net.Conn) *proxyproto.Conn {
	return proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.USE), proxyproto.SetReadHeaderTimeout(p.timeout))
}

// wrap returns a load balancer's connection c as a finger.HeaderConn
// that reads its PROXY header, if any, when the server asks.
func (p *proxyPolicy) wrap(c net.Conn) *proxyConn {
	pc := p.reader(c)
	sc, _ := c.(syscall.Conn)
	return &proxyConn{Conn: pc, raw: c, pc: pc, sc: sc}
}

// wrapHTTP returns c for the web listener: a load balancer's connection
// reading its PROXY header, if any, on first use; anyone else's as it is.
func (p *proxyPolicy) wrapHTTP(c net.Conn) net.Conn {
	if !p.allowed(c.RemoteAddr()) {
		return c
	}
	return p.reader(c)
}

// proxyConn is a load balancer's connection: a finger.HeaderConn.
type proxyConn struct {
	net.Conn          // pc
	raw      net.Conn // the accepted connection
	pc       *proxyproto.Conn
	sc       syscall.Conn // nil when the connection has no descriptor
	header   atomic.Bool  // ReadHeader was called
}

var _ finger.HeaderConn = (*proxyConn)(nil)

// ReadHeader reads the PROXY header, within the read deadline the server
// set and the header timeout, and returns the client's address: the
// header's, or the balancer's when there is none. Its size is bounded by
// the PROXY protocol reader: a v1 header is at most 107 bytes, a v2 header
// at most proxyproto.MaxV2HeaderSize (4096).
func (c *proxyConn) ReadHeader() (net.Addr, error) {
	c.header.Store(true)
	_, err := c.pc.Read(nil) // reads and checks the header
	if err != nil {
		return nil, err
	}
	return c.pc.RemoteAddr(), nil
}

// RemoteAddr is the balancer's address until the header has been read,
// then the client's.
func (c *proxyConn) RemoteAddr() net.Addr {
	if c.header.Load() {
		return c.pc.RemoteAddr()
	}
	return c.raw.RemoteAddr()
}

// LocalAddr is this end of the connection until the header has been read,
// then the address the header names.
func (c *proxyConn) LocalAddr() net.Addr {
	if c.header.Load() {
		return c.pc.LocalAddr()
	}
	return c.raw.LocalAddr()
}

// SetLinger sets the accepted connection's SO_LINGER (0: the server
// resets a connection it evicts).
func (c *proxyConn) SetLinger(sec int) error {
	if l, ok := c.raw.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return errors.ErrUnsupported
}

// CloseWrite half-closes the accepted connection (a clean close after an
// error line).
func (c *proxyConn) CloseWrite() error {
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// SyscallConn lets the server peek at the descriptor while it waits for the
// header; after it, bytes of the query may be buffered above the
// descriptor, and it fails.
func (c *proxyConn) SyscallConn() (syscall.RawConn, error) {
	if c.sc == nil || c.header.Load() {
		return nil, errors.ErrUnsupported
	}
	return c.sc.SyscallConn()
}
