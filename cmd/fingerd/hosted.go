package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/store/sqlite" // also registers the "sqlite:" store
	"github.com/openfinger/finger/internal/userinfo/hosted"
)

// storeOpenTimeout bounds opening and migrating the store at start.
const storeOpenTimeout = 30 * time.Second

// sqlitePath returns the file of a "sqlite:" store URL, as the driver
// reads it (sqlite.Path), or "" for other stores.
func sqlitePath(url string) string {
	p, err := sqlite.Path(url)
	if err != nil {
		return ""
	}
	return filepath.Clean(p)
}

// sqliteDir returns the directory of a "sqlite:" store URL with an
// absolute path, or "" for other stores.
func sqliteDir(url string) string {
	p := sqlitePath(url)
	if !filepath.IsAbs(p) {
		return ""
	}
	return filepath.Dir(p)
}

// giveStoreDir hands the directory of a SQLite store, and the store's
// files in it, to the serving user when they belong to root (as systemd's
// StateDirectory= creates it for a unit that starts as root), so that the
// serving user can write them after the drop. A directory that belongs to
// anyone else is left alone.
func giveStoreDir(cfg *config.Config, uid, gid int) error {
	dir := sqliteDir(cfg.Store.URL)
	if dir == "" {
		return nil
	}
	db := sqlitePath(cfg.Store.URL)
	for _, p := range []string{dir, db, db + "-wal", db + "-shm", db + "-journal"} {
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || !(fi.IsDir() || fi.Mode().IsRegular()) {
			continue
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("store: give %s to uid %d: %w", p, uid, err)
		}
	}
	return nil
}

// openStore opens the store of cfg and brings its schema up to date.
func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
	defer cancel()
	st, err := store.Open(ctx, cfg.Store.URL)
	if err != nil {
		return nil, storeHint(err, cfg)
	}
	if _, err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, storeHint(err, cfg)
	}
	return st, nil
}

// storeHint adds to a failure to open a SQLite store what the serving
// user needs.
func storeHint(err error, cfg *config.Config) error {
	dir := sqliteDir(cfg.Store.URL)
	if dir == "" {
		return fmt.Errorf("store: %w", err)
	}
	return fmt.Errorf("store: %w (the directory %s must exist and be writable by uid %d; with systemd, StateDirectory= does this)",
		err, dir, os.Geteuid())
}

// startHosted opens the store, loads the hosted users into d.hosted and
// keeps them current until ctx ends. It runs as the serving user, so that
// the files SQLite creates belong to it.
func (d *daemon) startHosted(ctx context.Context, cfg *config.Config) error {
	if d.hosted == nil {
		return nil
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	d.store = st
	d.hosted.Store = st
	lctx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
	defer cancel()
	if err := d.hosted.Load(lctx); err != nil {
		st.Close()
		return err
	}
	d.hostedDone = make(chan struct{})
	go func() {
		defer close(d.hostedDone)
		d.hosted.Run(ctx)
	}()
	go d.checkShadowed(ctx)
	d.metrics.WatchStore(d.storeState)
	d.log.Info("fingerd: hosted users loaded", "store", redactURL(cfg.Store.URL), "users", d.hosted.Len(), "version", d.hosted.Version())
	return nil
}

// shadowCheckInterval is how often the daemon looks for hosted users
// that a new system account hides.
const shadowCheckInterval = time.Minute

// checkShadowed tells the operator, once per login, of hosted users whose
// login a system account has, now and every shadowCheckInterval.
func (d *daemon) checkShadowed(ctx context.Context) {
	t := time.NewTicker(shadowCheckInterval)
	defer t.Stop()
	for {
		if g := d.cur.Load(); g != nil && g.overlay != nil {
			g.overlay.Check(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stopHosted stops following the store and closes it.
func (d *daemon) stopHosted() {
	if d.store == nil {
		return
	}
	if d.hostedDone != nil {
		<-d.hostedDone
	}
	d.store.Close()
}

// newHostedSource returns the hosted users' source for cfg, not loaded
// yet; nil when there is no store.
func newHostedSource(cfg *config.Config, log *slog.Logger) *hosted.Source {
	if cfg.Store.URL == "" {
		return nil
	}
	return &hosted.Source{PollInterval: cfg.Store.PollInterval.D(), Logger: log}
}

// redactURL hides a password in a store URL for the logs.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, ok := strings.Cut(rest[:at], ":"); ok {
			return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
		}
	}
	return u
}
