package main

import (
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
