//go:build !linux

package userinfo

import (
	"context"
	"time"
)

// sleepUntil waits until deadline or the end of ctx.
func sleepUntil(ctx context.Context, deadline time.Time) { sleepTimer(ctx, deadline) }
