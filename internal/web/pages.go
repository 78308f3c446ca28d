package web

import (
	"bytes"
	"cmp"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/openfinger/finger/internal/store"
)

// The pages: plain HTML, no script, one small style sheet. html/template
// escapes everything that comes from users.
var pages = template.Must(template.New("").Funcs(template.FuncMap{"date": httpDate}).Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="stylesheet" href="/style.css">
{{if .Feed}}<link rel="alternate" type="application/atom+xml" title="{{.Title}}" href="{{.Feed}}">{{end}}
</head>
<body>
<header><a href="/">{{.Site}}</a> · <a href="/feed">recent plans</a> · <a href="/edit">publish</a></header>
<main>
{{end}}
{{define "foot"}}</main>
</body>
</html>
{{end}}

{{define "directory"}}{{template "head" .}}
<h1>{{.Site}}</h1>
{{if .Users}}<table>
<thead><tr><th>Login</th><th>Name</th><th>Plan changed</th></tr></thead>
<tbody>
{{range .Users}}<tr><td><a href="/~{{.Name}}">{{.Name}}</a></td><td>{{.RealName}}</td><td>{{if .Changed.IsZero}}no plan{{else}}<time datetime="{{.Changed.Format "2006-01-02T15:04:05Z07:00"}}">{{date .Changed}}</time>{{end}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>Nobody is listed yet.</p>{{end}}
<p>Each user answers to <code>finger NAME@{{.Host}}</code> too.</p>
{{template "foot" .}}{{end}}

{{define "user"}}{{template "head" .}}
<h1>~{{.Name}}</h1>
<pre class="finger">{{.Answer}}</pre>
<p><a href="/~{{.Name}}/plan">plan as text</a> · <a href="/~{{.Name}}/feed">feed</a> · <a href="/edit?name={{.Name}}">edit</a></p>
{{template "foot" .}}{{end}}

{{define "edit"}}{{template "head" .}}
<h1>Publish</h1>
{{if .Message}}<p class="message" role="status">{{.Message}}</p>{{end}}
<form method="post" action="/edit" autocomplete="off">
<p><label>Name <input name="name" value="{{.Name}}" required pattern="[a-z0-9][a-z0-9._\-]{0,31}" autocomplete="off" spellcheck="false"></label></p>
<p><label>Token <input name="token" type="password" required autocomplete="off"></label></p>
<p><label>Text <select name="kind">{{range .Kinds}}<option{{if eq . $.Kind}} selected{{end}}>{{.}}</option>{{end}}</select></label></p>
<p><textarea name="text" rows="16" cols="72" spellcheck="false">{{.Text}}</textarea></p>
<p><button name="action" value="publish">Publish</button> <button name="action" value="delete">Delete</button></p>
</form>
<p>The token is sent with the form and kept nowhere in the browser. From a shell:
<code>curl -u NAME:TOKEN -T ~/.plan {{.Base}}/~NAME/plan</code></p>
{{template "foot" .}}{{end}}
`))

const styleSheet = `body{font-family:system-ui,sans-serif;max-width:50rem;margin:1rem auto;padding:0 1rem;line-height:1.4}
header{margin-bottom:1rem}pre,textarea,code{font-family:ui-monospace,monospace}
pre.finger{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:.75rem;unicode-bidi:plaintext}
table{border-collapse:collapse}td,th{padding:.2rem .75rem .2rem 0;text-align:left}
textarea{width:100%}.message{font-weight:bold}
`

type head struct {
	Site, Title, Feed string
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log().Error("web: page", "page", name, "err", err)
		plainError(w, http.StatusInternalServerError, "page failed")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write([]byte(styleSheet))
}

type dirUser struct {
	Name, RealName string
	Changed        time.Time
}

// listed returns the users the directory and /feed show.
func (s *Server) listed(r *http.Request) []dirUser {
	var out []dirUser
	system := s.systemLogins(r.Context())
	for _, e := range s.Hosted.Entries() {
		if !e.Listed || e.Hidden || system[e.Name] {
			continue
		}
		u := dirUser{Name: e.Name, RealName: e.RealName}
		if t, ok := e.Texts[store.KindPlan]; ok {
			u.Changed = t.Changed
		}
		out = append(out, u)
	}
	return out
}

// directory answers GET /: the listed users, the latest plan first.
func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	users := s.listed(r)
	slices.SortStableFunc(users, func(a, b dirUser) int { return b.Changed.Compare(a.Changed) })
	s.render(w, http.StatusOK, "directory", struct {
		head
		Users []dirUser
		Host  string
	}{head{s.title(), s.title(), "/feed"}, users, hostOnly(r.Host)})
}

// userPage answers GET /~NAME: the user's finger answer.
func (s *Server) userPage(w http.ResponseWriter, r *http.Request) {
	name, ok := userName(r.PathValue("tilde"))
	if !ok {
		plainError(w, http.StatusNotFound, "not found")
		return
	}
	if _, ok := s.visible(r.Context(), name); !ok {
		plainError(w, http.StatusNotFound, "no such user")
		return
	}
	answer := s.fingerAnswer(r.Context(), r, name)
	s.render(w, http.StatusOK, "user", struct {
		head
		Name, Answer string
	}{head{s.title(), "~" + name + " · " + s.title(), "/~" + name + "/feed"}, name, answer})
}

type editData struct {
	head
	Name, Kind, Text, Message, Base string
	Kinds                           []store.Kind
}

func (s *Server) editData(r *http.Request, name string, k store.Kind) editData {
	d := editData{head: head{s.title(), "Publish · " + s.title(), ""}, Name: name, Kind: string(k),
		Kinds: store.Kinds, Base: baseURL(r)}
	if e, ok := s.Hosted.Entry(name); ok {
		d.Text = e.Texts[k].Body
	}
	return d
}

// editPage answers GET /edit: the form, filled with the current text of
// ?name= (and ?kind=).
func (s *Server) editPage(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if store.ValidName(name) != nil {
		name = ""
	}
	k := store.Kind(r.URL.Query().Get("kind"))
	if !k.Valid() {
		k = store.KindPlan
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, http.StatusOK, "edit", s.editData(r, name, k))
}

// editPost answers the form: it publishes or deletes with the token
// given, and shows the form again with the outcome.
func (s *Server) editPost(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 4*s.maxBytes()+4096) // form encoding at most triples a byte
	if err := r.ParseForm(); err != nil {
		plainError(w, http.StatusRequestEntityTooLarge, "form too large or malformed")
		return
	}
	name, token, text := r.PostForm.Get("name"), r.PostForm.Get("token"), r.PostForm.Get("text")
	k := store.Kind(r.PostForm.Get("kind"))
	if !k.Valid() {
		k = store.KindPlan
	}
	if store.ValidName(name) != nil {
		d := s.editData(r, "", k)
		d.Message, d.Text = "No such user.", text
		s.render(w, http.StatusNotFound, "edit", d)
		return
	}
	start := time.Now()
	op := "put"
	if r.PostForm.Get("action") == "delete" {
		op = "delete"
	}
	status, msg, hash := s.authorize(r, name, name, token, token != "", op == "put")
	if status == 0 && op == "put" && int64(len(text)) > s.maxBytes() {
		status, msg = http.StatusRequestEntityTooLarge, "text larger than the limit"
	}
	if status == 0 {
		if op == "put" {
			if store.ValidText(text) != nil {
				status, msg = http.StatusBadRequest, "the text must be UTF-8 without NUL bytes"
			} else {
				status, msg = s.write(r, name, k, text, hash, true)
			}
		} else {
			status, msg = s.write(r, name, k, "", nil, false)
		}
	}
	if s.Metrics != nil {
		s.Metrics.Published(string(k), op, status)
	}
	d := s.editData(r, name, k)
	if status == http.StatusNoContent {
		s.log().Info("web: published", "user", name, "kind", string(k), "op", op,
			"bytes", len(text), "remote", r.RemoteAddr, "duration", time.Since(start), "form", true)
		d.Message = "Published."
		if op == "delete" {
			d.Message = "Deleted."
		}
		status = http.StatusOK
	} else {
		d.Message, d.Text = oneLine(msg), text
	}
	s.render(w, status, "edit", d)
}

// hostOnly returns the host of a Host header, without the port.
func hostOnly(h string) string {
	if i := lastColon(h); i >= 0 && !bytes.ContainsRune([]byte(h[i:]), ']') {
		return h[:i]
	}
	return cmp.Or(h, "localhost")
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

// baseURL returns the site's URL as the client reached it.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + cmp.Or(r.Host, "localhost")
}
