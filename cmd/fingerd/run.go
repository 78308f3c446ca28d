package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/logtext"
	"github.com/openfinger/finger/internal/metrics"
)

// run is the whole daemon: ctx ends it (SIGINT/SIGTERM in main).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "user" || args[0] == "store") {
		return runAdmin(ctx, args, stdout, stderr)
	}
	o, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, version())
		return nil
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	if o.checkConfig {
		fmt.Fprintf(stdout, "# effective configuration (%s)\n", describeSource(cfg))
		if err := cfg.Encode(stdout); err != nil {
			return err
		}
		printView(stdout, cfg)
		return nil
	}

	// In inetd mode standard error is often the client's socket: logs go
	// to syslog then, never to the client.
	logOut := stderr
	if o.inetd && stderrIsStdin() {
		logOut = nil
	}
	log, err := newLogger(cfg.Log, logOut)
	if err != nil {
		return err
	}

	d := &daemon{opts: o, log: log, readerStderr: logOut, hosted: newHostedSource(cfg, log)}
	switch {
	case o.inetd:
		c, err := stdioConn()
		if err != nil {
			return fmt.Errorf("inetd mode: %w", err)
		}
		return d.serveOne(ctx, cfg, c, "inetd")
	}
	sockets, err := activationSockets()
	if err != nil {
		return err
	}
	var listeners []net.Listener
	switch {
	case len(sockets.conns) > 0:
		// Accept=yes: systemd accepted the connection for us.
		for _, l := range sockets.listeners {
			l.Close()
		}
		for _, c := range sockets.conns[1:] {
			c.Close()
		}
		return d.serveOne(ctx, cfg, sockets.conns[0], "socket-activation-accept")
	case len(sockets.listeners) > 0:
		listeners = sockets.listeners
		d.mode = "socket-activation"
	default:
		d.mode = "standalone"
		// No TCP keepalive on finger connections: every one is bounded
		// by the read, write and connection timeouts, well before the
		// first probe would leave, and turning it on costs four system
		// calls per accepted connection, which a flood of connections
		// multiplies.
		lc := net.ListenConfig{KeepAlive: -1}
		for _, a := range cfg.Server.Listen {
			l, err := lc.Listen(ctx, "tcp", a)
			if err != nil {
				closeAll(listeners)
				return fmt.Errorf("listen: %w", err)
			}
			listeners = append(listeners, l)
		}
	}

	var metricsL net.Listener
	if cfg.Metrics.Listen != "" {
		d.metrics = metrics.New()
		if metricsL, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			closeAll(listeners)
			return fmt.Errorf("metrics: listen: %w", err)
		}
	}
	webL, webTLS, err := d.listenWeb(cfg)
	if err != nil {
		closeAll(listeners)
		return err
	}
	if webL != nil {
		defer webL.Close()
	}
	readerFailed := make(chan error, 1)
	if err := d.startHomes(cfg, readerFailed); err != nil {
		closeAll(listeners)
		return err
	}
	defer d.stopHomes()
	gen, err := d.newGeneration(cfg)
	if err != nil {
		closeAll(listeners)
		return err
	}
	if err := d.confine(cfg); err != nil {
		closeAll(listeners)
		return err
	}
	if d.homes == nil {
		d.warnUnsearchable(cfg)
	}
	hctx, stopHosted := context.WithCancel(context.Background())
	defer func() { stopHosted(); d.stopHosted() }()
	if err := d.startHosted(hctx, cfg); err != nil {
		closeAll(listeners)
		return err
	}
	ws := d.serveWeb(cfg, webL, webTLS)
	defer ws.shutdown()
	var ms *metrics.Server
	if metricsL != nil {
		ms = d.metrics.Serve(metricsL, func(err error) { d.log.Error("fingerd: metrics server", "err", err) })
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d.start(gen, listeners)
	addrs := make([]string, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr().String()
	}
	metricsAddr := ""
	if metricsL != nil {
		metricsAddr = metricsL.Addr().String()
	}
	d.log.Info("fingerd: started", "mode", d.mode, "listen", strings.Join(addrs, ","),
		"metrics", metricsAddr, "uid", os.Getuid(), "config", describeSource(cfg), "version", version())

	for {
		select {
		case <-hup:
			d.reload()
		case <-ctx.Done():
			d.log.Info("fingerd: stopping", "reason", "signal")
			err := d.stop()
			if ms != nil {
				sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
				ms.Shutdown(sctx)
				cancel()
			}
			d.log.Info("fingerd: stopped")
			return err
		case err := <-d.fatal:
			d.log.Error("fingerd: listener failed", "err", err)
			d.stop()
			return err
		case err := <-readerFailed:
			// Exit with an error, so that a supervisor restarts fingerd.
			d.stop()
			return fmt.Errorf("home reader: %w", err)
		}
	}
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// loadConfig reads the configuration (the -config file, else
// /etc/fingerd.toml when it exists, else the defaults), applies the flags
// and validates the result.
func loadConfig(o *options) (*config.Config, error) {
	var cfg *config.Config
	path := o.configPath
	if !o.configGiven {
		if _, err := os.Stat(config.DefaultPath); err == nil {
			path = config.DefaultPath
		}
	}
	if path != "" {
		c, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		cfg = c
	} else {
		cfg = config.Default()
	}
	applyFlags(cfg, o)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyFlags lets the command line override the file.
func applyFlags(cfg *config.Config, o *options) {
	if len(o.listen) > 0 {
		cfg.Server.Listen = append([]string(nil), o.listen...)
	}
	if o.user != "" {
		cfg.Server.User = o.user
	}
	if o.group != "" {
		cfg.Server.Group = o.group
	}
	if o.noList {
		cfg.Policy.List = false
	}
	if o.noUserFiles {
		cfg.Policy.UserFiles = false
	}
	if o.noRealNames {
		cfg.Policy.MatchRealNames = false
	}
	if o.metrics != "" {
		cfg.Metrics.Listen = o.metrics
	}
	if o.web != "" {
		cfg.Web.Listen = o.web
	}
	if o.logFormat != "" {
		cfg.Log.Format = o.logFormat
	}
	if o.logLevel != "" {
		cfg.Log.Level = o.logLevel
	}
}

func describeSource(cfg *config.Config) string {
	if cfg.Path == "" {
		return "built-in defaults"
	}
	return cfg.Path
}

func checkListenFlag(a string) error { return config.CheckListenAddr(a) }

// newLogger returns the logger [log] asks for, writing to w; with a nil w
// it writes to syslog (daemon facility), or nowhere when syslog is absent.
func newLogger(lc config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(lc.Level) {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("log.level: unknown level %q", lc.Level)
	}
	if w == nil {
		w = syslogWriter()
	}
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	// slog's text format, written faster for the flat records of every
	// query (internal/logtext).
	return slog.New(logtext.New(w, opts)), nil
}
