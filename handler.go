package finger

import (
	"context"
	"io"
	"net"
)

// A Handler answers finger queries.
//
// ServeFinger writes the reply to w and returns; the server then closes the
// connection. Reply lines may end in "\n": the server turns every line end
// into CRLF and ends the reply with one. ctx is done when the connection's
// time is up or the server closes; handlers that block must watch it.
//
// Text written to w reaches the remote user as is (apart from line ends):
// handlers filter what they did not write themselves.
type Handler interface {
	ServeFinger(ctx context.Context, w io.Writer, r *Request)
}

// HandlerFunc adapts an ordinary function to a Handler.
type HandlerFunc func(ctx context.Context, w io.Writer, r *Request)

// ServeFinger calls f(ctx, w, r).
func (f HandlerFunc) ServeFinger(ctx context.Context, w io.Writer, r *Request) { f(ctx, w, r) }

// Request is one finger query received by a server.
type Request struct {
	// Query is the parsed query.
	Query Query
	// Line is the query line as received, without its line end.
	Line string
	// RemoteAddr and LocalAddr are the connection's addresses. With the
	// PROXY protocol, RemoteAddr is the client behind the proxy.
	RemoteAddr net.Addr
	LocalAddr  net.Addr
}
