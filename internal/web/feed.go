package web

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/store"
)

// Atom (RFC 4287) documents. encoding/xml escapes the text and replaces
// the characters XML cannot hold.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  *atomAuthor `xml:"author,omitempty"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  *atomAuthor `xml:"author,omitempty"`
	Link    atomLink    `xml:"link"`
	Content atomContent `xml:"content"`
}

type atomContent struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// entries turns plan changes into feed entries. Texts pass finger's
// UTF-8-safe filter, as in a finger answer.
func (s *Server) entries(base string, changes []store.Change) []atomEntry {
	f := finger.Filter{UTF8: true}
	out := make([]atomEntry, 0, len(changes))
	for _, c := range changes {
		e := atomEntry{
			ID:      fmt.Sprintf("%s/~%s/feed#%d", base, c.Name, c.Version),
			Title:   fmt.Sprintf("~%s changed the plan", c.Name),
			Updated: atomTime(c.At),
			Author:  &atomAuthor{Name: c.Name},
			Link:    atomLink{Href: base + "/~" + c.Name},
			Content: atomContent{Type: "text", Body: f.String(c.Body)},
		}
		if c.Deleted {
			e.Title = fmt.Sprintf("~%s removed the plan", c.Name)
		}
		out = append(out, e)
	}
	return out
}

func (s *Server) writeFeed(w http.ResponseWriter, feed *atomFeed) {
	if len(feed.Entries) > 0 {
		feed.Updated = feed.Entries[0].Updated
	} else {
		feed.Updated = atomTime(time.Unix(0, 0))
	}
	out, err := xml.MarshalIndent(feed, "", " ")
	if err != nil {
		s.log().Error("web: feed", "err", err)
		plainError(w, http.StatusInternalServerError, "feed failed")
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(xml.Header))
	w.Write(out)
}

func (s *Server) feedFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		w.Header().Set("Retry-After", "30")
		plainError(w, http.StatusServiceUnavailable, s.unavailable("the feed", err))
		return
	}
	s.log().Error("web: feed", "err", err)
	plainError(w, http.StatusInternalServerError, "feed failed")
}

// userFeed answers GET /~NAME/feed: the user's plan changes.
func (s *Server) userFeed(w http.ResponseWriter, r *http.Request) {
	name, ok := userName(r.PathValue("tilde"))
	if !ok {
		plainError(w, http.StatusNotFound, "not found")
		return
	}
	if _, ok := s.visible(r.Context(), name); !ok {
		plainError(w, http.StatusNotFound, "no such user")
		return
	}
	ctx, cancel := s.storeCtx(r.Context())
	defer cancel()
	var changes []store.Change
	err := s.timed("history", func() (err error) {
		changes, err = s.Store.History(ctx, name, store.KindPlan, feedEntries)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		plainError(w, http.StatusNotFound, "no such user")
		return
	}
	if err != nil {
		s.feedFailed(w, err)
		return
	}
	base := baseURL(r)
	s.writeFeed(w, &atomFeed{
		ID:      base + "/~" + name + "/feed",
		Title:   "~" + name + " · " + s.title(),
		Links:   []atomLink{{Rel: "self", Href: base + "/~" + name + "/feed"}, {Rel: "alternate", Href: base + "/~" + name}},
		Author:  &atomAuthor{Name: name},
		Entries: s.entries(base, changes),
	})
}

// recentFeed answers GET /feed: the listed users' plan changes.
func (s *Server) recentFeed(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.storeCtx(r.Context())
	defer cancel()
	var changes []store.Change
	err := s.timed("recent", func() (err error) {
		changes, err = s.Store.Recent(ctx, store.KindPlan, feedEntries*2)
		return err
	})
	if err != nil {
		s.feedFailed(w, err)
		return
	}
	kept := changes[:0]
	system := s.systemLogins(r.Context())
	for _, c := range changes {
		if !system[c.Name] && len(kept) < feedEntries {
			kept = append(kept, c)
		}
	}
	base := baseURL(r)
	s.writeFeed(w, &atomFeed{
		ID:      base + "/feed",
		Title:   "Recent plans · " + s.title(),
		Links:   []atomLink{{Rel: "self", Href: base + "/feed"}, {Rel: "alternate", Href: base + "/"}},
		Author:  &atomAuthor{Name: s.title()},
		Entries: s.entries(base, kept),
	})
}
