package finger

import (
	"context"
	"io"
	"net"
)

// A Handler answers finger queries.
//
// ServeFinger writes the reply to w and returns; the server then closes the
// connection. Reply lines may end in "\n", "\r\n" or "\r": the server
// writes every line end as CRLF, never a lone CR, and ends a reply that
// does not end in a line end with one. An empty reply stays empty.
//
// The server buffers w; the reply leaves when the buffer fills and when
// ServeFinger returns. A handler that relays a slow source can send what
// it has at once with w.(interface{ Flush() error }).Flush().
//
// ctx is done when the connection's time is up, when the server is closed
// (Close, or Shutdown's deadline) or when ServeConn's context is done;
// writes to w then fail, and handlers that block must watch ctx.
//
// If ServeFinger panics, the server recovers, logs the panic with its
// stack, sends "finger: internal error" if nothing of the reply has left
// yet, and closes the connection.
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
