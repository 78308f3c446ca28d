// Command finger asks finger servers (RFC 1288) about users, and answers
// about this host's users locally, like BSD finger. Replies are filtered so
// that control and escape sequences never reach the terminal.
//
// See finger(1) (docs/finger.1) for the options and exit statuses.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err))
}
