// Package metrics exposes fingerd's counters in the Prometheus format: the
// queries served by kind and outcome, their durations and reply bytes, the
// connections open, the limits hit, and the state of the link to the store
// of hosted users. It also answers /healthz, which is not a finger query
// and is not counted as one.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
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
	// LimitEvicted counts connections closed before their query to make
	// room for a new connection at a cap.
	LimitEvicted = "evicted"
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
	nss      prometheus.Counter

	publishes    *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec

	storeOnce sync.Once
	storeMu   sync.Mutex
	store     func() StoreState
}

// StoreState is what a replica knows of its link to the store of hosted
// users, for the store metrics and /healthz.
type StoreState struct {
	// Synced is when the store last confirmed that the users held are
	// current; zero when it never has (nothing is held).
	Synced time.Time
	// Version is the store version held.
	Version int64
	// Err is the error of the last attempt to refresh; nil when it
	// succeeded.
	Err error
	// Announces is true when the store announces writes (a
	// store.Watcher); WatchErr then says why its link is down, nil when
	// it is up.
	Announces bool
	WatchErr  error
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
			Help: "Connections refused by a limit: conns (global or per-address caps) or rate; evicted: closed before their query to make room for a new one.",
		}, []string{"limit"}),
		nss: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fingerd_name_service_limited_total",
			Help: "Account lookups in the name service cut short by its timeout or its bound on outstanding lookups, and answered as unknown users.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fingerd_config_reloads_total",
			Help: "Configuration reloads, by result (ok or error).",
		}, []string{"result"}),
	}
	m.publishes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fingerd_web_publishes_total",
		Help: "Texts published or deleted over HTTP, by kind, operation (put or delete) and HTTP status.",
	}, []string{"kind", "op", "status"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fingerd_web_auth_failures_total",
		Help: "Publishing attempts refused for their credentials: missing, bad, or limited (too many failures from the address or for the name).",
	}, []string{"reason"})
	m.storeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fingerd_web_store_seconds",
		Help:    "Time of the store calls made by the HTTP server, by operation.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"op"})
	m.reg.MustRegister(m.publishes, m.authFailures, m.storeLatency)
	for _, r := range []string{"missing", "bad", "limited"} {
		m.authFailures.WithLabelValues(r)
	}
	m.reg.MustRegister(m.queries, m.duration, m.bytes, m.open, m.limits, m.reloads, m.nss,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, l := range []string{LimitConns, LimitRate, LimitEvicted} {
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
	case finger.OutcomeEvicted:
		m.limits.WithLabelValues(LimitEvicted).Inc()
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

// NameServiceLimited counts an account lookup cut short by the name
// service's timeout or bound (passwd.Accounts.OnLimit).
func (m *Metrics) NameServiceLimited() {
	if m != nil {
		m.nss.Inc()
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

// Published counts a text published or deleted over HTTP.
func (m *Metrics) Published(kind, op string, status int) {
	if m != nil {
		m.publishes.WithLabelValues(kind, op, strconv.Itoa(status)).Inc()
	}
}

// AuthFailed counts a publishing attempt refused for its credentials.
func (m *Metrics) AuthFailed(reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}

// StoreLatency records the time of one store call of the HTTP server.
func (m *Metrics) StoreLatency(op string, d time.Duration) {
	if m != nil {
		m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
	}
}

// WatchStore makes state the source of the store metrics
// (fingerd_store_*) and of the store lines of /healthz. Later calls replace
// the function; state is called at every scrape and must be cheap.
func (m *Metrics) WatchStore(state func() StoreState) {
	if m == nil {
		return
	}
	m.storeMu.Lock()
	m.store = state
	m.storeMu.Unlock()
	m.storeOnce.Do(func() {
		get := func() (StoreState, bool) {
			m.storeMu.Lock()
			f := m.store
			m.storeMu.Unlock()
			if f == nil {
				return StoreState{}, false
			}
			return f(), true
		}
		gauge := func(name, help string, value func(StoreState) float64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
				st, ok := get()
				if !ok {
					return 0
				}
				return value(st)
			})
		}
		m.reg.MustRegister(
			gauge("fingerd_store_sync_age_seconds",
				"Seconds since the store last confirmed that the hosted users held are current: how stale answers may be. -1 when it never has.",
				func(st StoreState) float64 {
					if st.Synced.IsZero() {
						return -1
					}
					return time.Since(st.Synced).Seconds()
				}),
			gauge("fingerd_store_up", "1 when the last refresh from the store succeeded, else 0.",
				func(st StoreState) float64 { return b2f(st.Err == nil && !st.Synced.IsZero()) }),
			gauge("fingerd_store_watch_up", "1 when the link on which the store announces writes is up, else 0 (always 0 for a store that does not announce writes).",
				func(st StoreState) float64 { return b2f(st.Announces && st.WatchErr == nil) }),
			gauge("fingerd_store_version", "The store version of the hosted users held.",
				func(st StoreState) float64 { return float64(st.Version) }),
		)
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// health writes the /healthz body and returns its status: 200 while the
// daemon answers, which it does from what it holds even when the store is
// away; 503 when a store is configured and nothing was ever read from it,
// so that answers about hosted users would be wrong.
func (m *Metrics) health() (int, string) {
	m.storeMu.Lock()
	f := m.store
	m.storeMu.Unlock()
	if f == nil {
		return http.StatusOK, "ok\n"
	}
	st := f()
	var b []byte
	code := http.StatusOK
	switch {
	case st.Synced.IsZero():
		code = http.StatusServiceUnavailable
		b = fmt.Appendf(b, "unavailable\nstore: never read: %v\n", st.Err)
	case st.Err != nil:
		b = fmt.Appendf(b, "ok\nstore: unavailable: %v; answering from what is held, synced %.1fs ago (version %d)\n",
			st.Err, time.Since(st.Synced).Seconds(), st.Version)
	default:
		b = fmt.Appendf(b, "ok\nstore: ok, synced %.1fs ago (version %d)\n", time.Since(st.Synced).Seconds(), st.Version)
	}
	switch {
	case !st.Announces:
	case st.WatchErr != nil:
		b = fmt.Appendf(b, "store announcements: down: %v\n", st.WatchErr)
	default:
		b = fmt.Appendf(b, "store announcements: up\n")
	}
	return code, string(b)
}

// Handler serves /metrics (Prometheus text format) and /healthz: "ok"
// while the daemon answers, with the state of its link to the store when
// there is one (see WatchStore). Everything else is 404.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		code, body := m.health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		w.Write([]byte(body))
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
