package main

import (
	"net"

	_ "github.com/openfinger/finger/internal/store/postgres" // the "postgres:" store

	"github.com/openfinger/finger/internal/metrics"
)

// storeState is what the metrics and /healthz say of the link to the
// store of hosted users.
func (d *daemon) storeState() metrics.StoreState {
	st := metrics.StoreState{Synced: d.hosted.Synced(), Version: d.hosted.Version(), Err: d.hosted.Err()}
	// A store shared by several processes (PostgreSQL) announces their
	// writes on a link of its own.
	if w, ok := d.store.(interface{ WatchErr() error }); ok {
		st.Announces = true
		st.WatchErr = w.WatchErr()
	}
	return st
}

// proxiedListener applies the current configuration's PROXY policy
// (server.proxy_from) to every connection it accepts, as the finger
// listeners do: for the HTTP listener, whose clients come through the same
// load balancers. A connection from a load balancer in proxy_from is served
// under the client address its PROXY header gives (its own without one);
// anyone else's connection is not read for a header, so a header it sends
// is a bad request.
type proxiedListener struct {
	net.Listener
	policy func() *proxyPolicy // nil result: the PROXY protocol is off
}

func (l proxiedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if p := l.policy(); p != nil {
		c = p.wrapHTTP(c)
	}
	return c, nil
}

// proxied returns l behind the PROXY policy of d's current configuration.
func (d *daemon) proxied(l net.Listener) net.Listener {
	return proxiedListener{Listener: l, policy: func() *proxyPolicy {
		if g := d.cur.Load(); g != nil {
			return g.proxy
		}
		return nil
	}}
}
