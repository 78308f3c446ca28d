package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/hostusers"
	"github.com/openfinger/finger/internal/metrics"
	"github.com/openfinger/finger/internal/safefile"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/hosted"
)

// msgUnavailable is the generic line for a failure the remote user need
// not know the cause of.
const msgUnavailable = "finger: service temporarily unavailable."

// buildHandler returns the handler for cfg: this host's users (with
// forwarding when enabled, and the virtual users marked listed in {C}),
// in front of which the configured virtual users answer for their logins.
// files reads the users' published files (nil: this process reads them).
// close releases what the handler holds
// (the D-Bus connection to logind, the last-login databases).
//
// With hosted users (hs not nil) the host's accounts and the hosted users
// answer together through ov; a login that is both is the account's.
func buildHandler(cfg *config.Config, log *slog.Logger, files userinfo.Files, m *metrics.Metrics, hs *hosted.Source) (h finger.Handler, ov *hosted.Overlay, close func(), err error) {
	opts := hostusers.FromConfig(cfg)
	opts.Logger = log
	opts.Files = files
	if m != nil {
		opts.NameServiceLimited = m.NameServiceLimited
	}
	r, err := hostusers.New(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if hs != nil {
		ov = &hosted.Overlay{System: r.Accounts, SystemFiles: r.Files, Hosted: hs, Logger: log}
		r.Accounts, r.Files, r.Directory = ov, ov, ov
	}
	if cfg.Forward.Enabled {
		r.Forward = newForwarder(cfg.Forward, log)
	}
	for _, u := range cfg.Virtual {
		if u.Listed {
			r.Listed = append(r.Listed, userinfo.Account{Login: u.Login, Name: u.Name})
		}
	}
	close = func() {
		if c, ok := r.Sessions.(io.Closer); ok {
			c.Close()
		}
		if c, ok := r.LastLogins.(io.Closer); ok {
			c.Close()
		}
	}
	if len(cfg.Virtual) == 0 {
		return r, ov, close, nil
	}
	v := &virtualUsers{next: r, users: make(map[string]config.Virtual), programs: cfg.Programs.Enabled,
		launcher: cfg.Server.Landlock, log: log}
	for _, u := range cfg.Virtual {
		v.users[u.Login] = u
	}
	return v, ov, close, nil
}

func newForwarder(f config.Forward, log *slog.Logger) *finger.Forwarder {
	fw := &finger.Forwarder{
		MaxHops:        f.MaxHops,
		ConnectTimeout: f.ConnectTimeout.D(),
		IdleTimeout:    f.IdleTimeout.D(),
		TotalTimeout:   f.TotalTimeout.D(),
		MaxBytes:       f.MaxBytes,
		AllowPrivate:   f.AllowPrivate,
		Logger:         log,
	}
	for _, port := range f.AllowPorts {
		if port > 0 && port <= 65535 {
			fw.AllowPorts = append(fw.AllowPorts, uint16(port))
		}
	}
	for _, a := range f.Allow {
		if strings.Contains(a, "/") {
			if p, err := config.ParsePrefix(a); err == nil {
				fw.Allow = append(fw.Allow, p)
			}
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			ip = ip.Unmap()
			fw.Allow = append(fw.Allow, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		fw.AllowHosts = append(fw.AllowHosts, a)
	}
	return fw
}

// virtualUsers answers a query for exactly one name that is a virtual
// user's login, and hands every other query to next.
type virtualUsers struct {
	next     finger.Handler
	users    map[string]config.Virtual
	programs bool
	launcher bool // programs start through fingerd's launcher (launchSpec)
	log      *slog.Logger
}

func (v *virtualUsers) ServeFinger(ctx context.Context, w io.Writer, r *finger.Request) {
	names := r.Query.Names()
	if len(r.Query.Hosts) > 0 || len(names) != 1 {
		v.next.ServeFinger(ctx, w, r)
		return
	}
	u, ok := v.users[names[0]]
	if !ok {
		v.next.ServeFinger(ctx, w, r)
		return
	}
	switch {
	case u.Text != "":
		io.WriteString(w, u.Text)
	case u.File != "":
		v.serveFile(w, u)
	default:
		v.serveProgram(ctx, w, u, r)
	}
}

// serveFile shows the virtual user's file, read at query time with
// safefile.Read: no symbolic link anywhere in the path, a regular file
// only (a FIFO or a device is never opened for reading and never blocks),
// owned by the entry's owner (root by default), not writable by group or
// others, at most max_bytes, through the UTF-8-safe filter. A file that
// breaks a rule is logged and answered with the generic line.
func (v *virtualUsers) serveFile(w io.Writer, u config.Virtual) {
	data, truncated, err := safefile.Read(u.File, virtualFileRules(u), u.MaxBytes)
	if err != nil {
		v.log.Warn("fingerd: virtual user file", "login", u.Login, "err", err)
		io.WriteString(w, msgUnavailable+"\n")
		return
	}
	fw := finger.Filter{UTF8: true}.NewWriter(w)
	fw.Write(data)
	fw.Close()
	if truncated {
		fmt.Fprintf(w, "\n[truncated at %d bytes]\n", u.MaxBytes)
	}
}

// virtualFileRules are the rules a virtual user's file must satisfy.
func virtualFileRules(u config.Virtual) safefile.Rules {
	return safefile.Rules{Owners: []uint32{u.OwnerUID}, NotWritable: true, NoSymlinks: true}
}
