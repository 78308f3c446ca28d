package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The HTTP listener follows server.proxy_from like the finger listeners: a
// load balancer's PROXY header gives the client address the handlers see;
// anyone else's header is not read as one, so the request is refused; no
// header, the peer's own address.
func TestProxiedListener(t *testing.T) {
	tests := []struct {
		name   string
		from   []string // proxy_from; nil: PROXY protocol off
		header string
		want   string // the address the handler sees; "" when the request must fail
	}{
		{"balancer's header", []string{"127.0.0.1"}, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", "203.0.113.7:5555"},
		{"balancer without header", []string{"127.0.0.1"}, "", "127.0.0.1:"},
		{"header from a stranger", []string{"10.0.0.0/8"}, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", ""},
		{"PROXY protocol off", nil, "", "127.0.0.1:"},
		{"header with the PROXY protocol off", nil, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var pol *proxyPolicy
			if tt.from != nil {
				pol = newProxyPolicy(tt.from, time.Second)
			}
			srv := &http.Server{
				Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) }),
				ReadTimeout: 5 * time.Second,
			}
			go srv.Serve(proxiedListener{Listener: l, policy: func() *proxyPolicy { return pol }})
			defer srv.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, tt.header+"GET / HTTP/1.0\r\n\r\n")
			b, _ := io.ReadAll(c)
			reply := string(b)
			_, body, _ := strings.Cut(reply, "\r\n\r\n")
			switch {
			case tt.want == "" && !strings.HasPrefix(reply, "HTTP/1.1 400 "):
				t.Errorf("reply = %q, want the request refused as a bad request", reply)
			case tt.want != "" && !strings.HasPrefix(body, tt.want):
				t.Errorf("handler saw RemoteAddr %q (reply %q), want %q", body, reply, tt.want)
			}
		})
	}
}
