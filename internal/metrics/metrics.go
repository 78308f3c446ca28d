// Package metrics exposes fingerd's counters in the Prometheus format: the
// queries served by kind and outcome, their durations and reply bytes, the
// connections open, and the limits hit. It also answers /healthz, which is
// not a finger query and is not counted as one.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/openfinger/finger"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limit labels for LimitHit.
const (
	LimitConns = "conns" // a global or per-address connection cap
	LimitRate  = "rate"  // the per-address rate
)

// Metrics holds the collectors. Create it with New; all methods are safe
// for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	queries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    prometheus.Counter
	open     prometheus.Gauge
	limits   *prometheus.CounterVec
	reloads  *prometheus.CounterVec
}

// New returns Metrics registered in a registry of their own, with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fingerd_queries_total",
			Help: "Finger connections served, by query kind (list, user, forward, or empty when no valid query) and outcome.",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fingerd_query_duration_seconds",
			Help:    "Time from accepting a connection to closing it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"kind"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fingerd_reply_bytes_total",
			Help: "Reply bytes written to finger clients.",
		}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fingerd_connections_open",
			Help: "Finger connections open now.",
		}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fingerd_limits_hit_total",
			Help: "Connections refused by a limit: conns (global or per-address caps) or rate.",
		}, []string{"limit"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fingerd_config_reloads_total",
			Help: "Configuration reloads, by result (ok or error).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.queries, m.duration, m.bytes, m.open, m.limits, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, l := range []string{LimitConns, LimitRate} {
		m.limits.WithLabelValues(l)
	}
	return m
}

// Observe records one finger connection; it fits finger.Server's Observe
// hook. Refusals by the connection caps and by the rate limit are also
// counted as limits hit.
func (m *Metrics) Observe(r finger.Record) {
	if m == nil {
		return
	}
	m.queries.WithLabelValues(r.Kind, r.Outcome).Inc()
	m.duration.WithLabelValues(r.Kind).Observe(r.Duration.Seconds())
	m.bytes.Add(float64(r.Bytes))
	switch r.Outcome {
	case finger.OutcomeBusy:
		m.limits.WithLabelValues(LimitConns).Inc()
	case finger.OutcomeRefused:
		m.limits.WithLabelValues(LimitRate).Inc()
	}
}

// ConnOpened and ConnClosed track the connections open.
func (m *Metrics) ConnOpened() {
	if m != nil {
		m.open.Inc()
	}
}

// ConnClosed is the counterpart of ConnOpened.
func (m *Metrics) ConnClosed() {
	if m != nil {
		m.open.Dec()
	}
}

// Reloaded counts a configuration reload.
func (m *Metrics) Reloaded(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
	} else {
		m.reloads.WithLabelValues("ok").Inc()
	}
}

// Handler serves /metrics (Prometheus text format) and /healthz ("ok").
// Everything else is 404.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return mux
}

// Server serves Handler on a listener of its own, with bounded timeouts.
type Server struct {
	hs *http.Server
}

// Serve starts serving m on l in a goroutine and returns at once.
// errLog receives an unexpected serving error.
func (m *Metrics) Serve(l net.Listener, errLog func(error)) *Server {
	s := &Server{hs: &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}}
	go func() {
		if err := s.hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && errLog != nil {
			errLog(err)
		}
	}()
	return s
}

// Shutdown stops the server gracefully, within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.hs.Shutdown(ctx)
}
