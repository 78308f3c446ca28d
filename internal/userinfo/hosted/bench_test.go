package hosted_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/userinfo/hosted"
)

// BenchmarkAnswer measures a {U} answer for a hosted user among 10,000,
// as the Responder gives it (without the socket).
func BenchmarkAnswer(b *testing.B) {
	ctx := context.Background()
	l := newLab(b, system())
	plan := strings.Repeat(strings.Repeat("p", 64)+"\n", 16)
	for i := range 10000 {
		name := fmt.Sprintf("bench%05d", i)
		if err := l.st.CreateUser(ctx, store.User{Name: name, RealName: "Bench User"}, store.HashToken(name)); err != nil {
			b.Fatal(err)
		}
		if i == 5000 {
			if _, err := l.st.PutText(ctx, name, store.KindPlan, plan); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := l.src.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	req := &finger.Request{Query: finger.Query{User: "bench05000"}}
	var first bytes.Buffer
	l.rs.ServeFinger(ctx, &first, req)
	if want := "Login: bench05000"; !strings.Contains(first.String(), want) || !strings.Contains(first.String(), plan) {
		b.Fatalf("answer = %q, want %q and the plan", first.String(), want)
	}
	// Every answer is checked by its length, which costs nothing: the
	// same answer each time.
	var w countWriter
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w = 0
		l.rs.ServeFinger(ctx, &w, req)
		if int(w) != first.Len() {
			b.Fatalf("answer of %d bytes, want %d as the first", w, first.Len())
		}
	}
}

// countWriter counts the bytes written to it.
type countWriter int

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

// BenchmarkPublished measures what a publish costs the held copy of
// 10,000 users once the store has written it: applied from the change
// itself (Wrote), or read back from the store (WaitVersion, what a write
// of another process needs). The store's write is not timed.
func BenchmarkPublished(b *testing.B) {
	ctx := context.Background()
	st, _ := newStore(b)
	plan := strings.Repeat(strings.Repeat("p", 64)+"\n", 16)
	const users = 10000
	for i := range users {
		name := fmt.Sprintf("bench%05d", i)
		if err := st.CreateUser(ctx, store.User{Name: name}, store.HashToken(name)); err != nil {
			b.Fatal(err)
		}
	}
	for _, bm := range []struct {
		name  string
		bring func(*hosted.Source, store.Change) error
	}{
		{"apply", func(src *hosted.Source, c store.Change) error { return src.Wrote(ctx, c) }},
		{"read", func(src *hosted.Source, c store.Change) error { return src.WaitVersion(ctx, c.Version) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			src := &hosted.Source{Store: st}
			if err := src.Load(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				name := fmt.Sprintf("bench%05d", i*7919%users)
				c, err := st.PutText(ctx, name, store.KindPlan, fmt.Sprint(plan, i))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := bm.bring(src, c); err != nil {
					b.Fatal(err)
				}
				if e, _ := src.Entry(name); e.Texts[store.KindPlan].Body != c.Body {
					b.Fatalf("%s's plan not held after the publish", name)
				}
			}
		})
	}
}
