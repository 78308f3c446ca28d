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
	"runtime"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	go cancelOnSignal(cancel)
	// Let cancelOnSignal register for the signals before the command
	// starts; it then waits for the runtime's signal thread on its own.
	runtime.Gosched()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitStatus(err))
}

// cancelOnSignal cancels the command on SIGINT or SIGTERM: the reply
// received so far is shown, the remaining operands are not asked, and the
// command exits with status 130. Later signals are ignored.
//
// It runs beside the command rather than before it. Enabling signal
// delivery hands the signal mask over to a dedicated runtime thread and
// waits for that thread to start and answer; done in line, the hand-off
// delayed every query by about half a millisecond. A signal that arrives
// while the hand-off is still going on is delivered when it completes, so
// the command is still cancelled, not killed. Delivery is not disabled
// again before exit, which would cost a second hand-off.
func cancelOnSignal(cancel context.CancelFunc) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	cancel()
}
