package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/openfinger/finger/internal/store"
)

// storeCopy copies every hosted user of the store at fromURL into to,
// which must hold none of them: "fingerd store copy", to move from one
// machine's SQLite file to a PostgreSQL database shared by replicas (or
// back). Each user keeps their token (its hash is copied), real name,
// flags and creation time; each text's history is replayed oldest first,
// then the current texts, so the store records the changes at the time of
// the copy.
func storeCopy(ctx context.Context, fromURL string, to store.Store, stdout io.Writer) error {
	if p, ok := strings.CutPrefix(fromURL, "sqlite:"); ok {
		// Opening a SQLite URL creates the file: refuse a missing one.
		if _, err := os.Stat(strings.TrimPrefix(p, "//")); err != nil {
			return fmt.Errorf("store copy: %w", err)
		}
	}
	from, err := store.Open(ctx, fromURL)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	defer from.Close()
	if _, err := from.Migrate(ctx); err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	snap, err := from.Snapshot(ctx, 0)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	if len(snap.Users) == 0 {
		return errors.New("store copy: the store to copy from has no hosted users")
	}
	have, err := to.Users(ctx)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	exists := map[string]bool{}
	for _, u := range have {
		exists[u.Name] = true
	}
	var clash []string
	for _, e := range snap.Users {
		if exists[e.Name] {
			clash = append(clash, e.Name)
		}
	}
	if len(clash) > 0 {
		return fmt.Errorf("store copy: the store of [store] url already has %s; nothing copied", strings.Join(clash, ", "))
	}
	texts := 0
	for _, e := range snap.Users {
		hash, err := from.TokenHash(ctx, e.Name)
		if err != nil {
			return fmt.Errorf("store copy: %w", err)
		}
		if err := to.CreateUser(ctx, e.User, hash); err != nil {
			return fmt.Errorf("store copy: %w", err)
		}
		for _, k := range store.Kinds {
			n, err := copyText(ctx, from, to, e, k)
			if err != nil {
				return fmt.Errorf("store copy: %s of %s: %w", k, e.Name, err)
			}
			texts += n
		}
	}
	fmt.Fprintf(stdout, "copied %d hosted users and %d texts\n", len(snap.Users), texts)
	return nil
}

// copyText replays the history of e's text of kind k into to and ends
// with the current text; it returns 1 when there is a current text.
func copyText(ctx context.Context, from, to store.Store, e store.Entry, k store.Kind) (int, error) {
	hist, err := from.History(ctx, e.Name, k, store.HistoryLimit)
	if err != nil {
		return 0, err
	}
	held := false // whether to has a text of kind k now
	body := ""
	for i := len(hist) - 1; i >= 0; i-- {
		c := hist[i]
		switch {
		case c.Deleted && held:
			if _, err := to.DeleteText(ctx, e.Name, k); err != nil {
				return 0, err
			}
			held = false
		case !c.Deleted:
			if _, err := to.PutText(ctx, e.Name, k, c.Body); err != nil {
				return 0, err
			}
			held, body = true, c.Body
		}
	}
	cur, ok := e.Texts[k]
	switch {
	case ok && (!held || body != cur.Body):
		if _, err := to.PutText(ctx, e.Name, k, cur.Body); err != nil {
			return 0, err
		}
	case !ok && held:
		if _, err := to.DeleteText(ctx, e.Name, k); err != nil {
			return 0, err
		}
	}
	if ok {
		return 1, nil
	}
	return 0, nil
}
