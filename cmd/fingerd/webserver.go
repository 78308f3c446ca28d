package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/web"
)

// listenWeb binds [web] listen and reads the TLS certificate, before the
// daemon gives up root (the address may be a privileged port, the key
// readable by root only). It returns a nil listener when the web server
// is off.
func (d *daemon) listenWeb(cfg *config.Config) (net.Listener, *tls.Config, error) {
	w := cfg.Web
	if w.Listen == "" {
		return nil, nil, nil
	}
	if cfg.Store.URL == "" {
		return nil, nil, errors.New("web: the web server needs [store] url")
	}
	var tc *tls.Config
	if w.Cert != "" {
		cert, err := tls.LoadX509KeyPair(w.Cert, w.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("web: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	l, err := net.Listen("tcp", w.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("web: listen: %w", err)
	}
	if web.ClearTextRisk(w.Listen, tc != nil) {
		d.log.Warn("fingerd: the web server takes publishing tokens over plain HTTP on a non-loopback address; set [web] cert and key, or listen on loopback behind a TLS proxy",
			"listen", l.Addr().String())
	}
	return l, tc, nil
}

// webServer is the running web server; its zero value (off) shuts down
// as a no-op.
type webServer struct {
	hs *http.Server
}

func (w webServer) shutdown() {
	if w.hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	w.hs.Shutdown(ctx)
}

// serveWeb starts the web server on l (nil: off). The user pages show
// the answer of the current generation's handler, so that a reload
// applies to them too.
func (d *daemon) serveWeb(cfg *config.Config, l net.Listener, tc *tls.Config) webServer {
	if l == nil || d.store == nil {
		return webServer{}
	}
	srv := &web.Server{
		Store:        d.store,
		Hosted:       d.hosted,
		Finger:       d.currentHandler,
		System:       systemAccounts{d},
		MaxTextBytes: cfg.Policy.MaxFileBytes,
		Logger:       d.log,
	}
	if d.metrics != nil {
		srv.Metrics = d.metrics
	}
	hs := web.NewHTTPServer(srv.Handler(), tc, d.log)
	go func() {
		var err error
		// Behind a load balancer in server.proxy_from, the client's
		// address comes in a PROXY header, before any TLS.
		if tc != nil {
			err = hs.ServeTLS(d.proxied(l), "", "")
		} else {
			err = hs.Serve(d.proxied(l))
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("fingerd: web server", "err", err)
		}
	}()
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	d.log.Info("fingerd: web server started", "listen", l.Addr().String(), "scheme", scheme)
	return webServer{hs: hs}
}

// currentHandler returns the finger handler of the current generation.
func (d *daemon) currentHandler() finger.Handler {
	if g := d.cur.Load(); g != nil {
		return g.srv.Handler
	}
	return nil
}

// systemAccounts looks logins up in the current generation's system
// accounts: a hosted user with such a login is the account's.
type systemAccounts struct{ d *daemon }

func (s systemAccounts) Lookup(ctx context.Context, login string) (*userinfo.Account, error) {
	// The overlay remembers, for a while, that a hosted login is no
	// account: publishing does not ask the name service every time.
	if g := s.d.cur.Load(); g != nil && g.overlay != nil && g.overlay.SystemHas(ctx, login) {
		return g.overlay.System.Lookup(ctx, login)
	}
	return nil, userinfo.ErrNotFound
}

func (s systemAccounts) All(ctx context.Context) ([]*userinfo.Account, error) {
	if g := s.d.cur.Load(); g != nil && g.overlay != nil {
		return g.overlay.System.All(ctx)
	}
	return nil, nil
}
