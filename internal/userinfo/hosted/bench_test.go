package hosted_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/store"
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
