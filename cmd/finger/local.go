package main

import (
	"context"
	"errors"
	"io"
	"io/fs"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/hostusers"
)

// daemonConfigPath is fingerd's configuration: local answers use its
// [sources] and [policy] so they say what fingerd says.
var daemonConfigPath = config.DefaultPath

// answerLocal answers q about this host's users with the Responder fingerd
// serves, built from fingerd's configuration when it exists and can be
// read, from the defaults otherwise. -m and -p narrow the policy further.
func answerLocal(ctx context.Context, q finger.Query, o *options, w io.Writer) error {
	cfg, err := config.Load(daemonConfigPath)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		cfg = config.Default()
	case err != nil:
		return err
	}
	opts := hostusers.FromConfig(cfg)
	if o.noMatch {
		opts.Policy.MatchRealNames = false
	}
	if o.noPlan {
		opts.Policy.UserFiles = false
	}
	r, err := hostusers.New(opts)
	if err != nil {
		return err
	}
	r.ServeFinger(ctx, w, &finger.Request{Query: q, Line: q.String()})
	// The Responder stops early when ctx is done; the answer is then
	// incomplete.
	return ctx.Err()
}
