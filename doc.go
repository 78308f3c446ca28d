// Package finger implements the finger protocol (RFC 1288): the query
// grammar, a server shaped like net/http, a client, and the output filter
// both sides use to keep control and escape sequences away from terminals.
//
// A finger exchange is one query line from the client, then the server's
// reply, then the server's close. The close is the only end-of-reply marker.
//
// The package uses the standard library only.
package finger
