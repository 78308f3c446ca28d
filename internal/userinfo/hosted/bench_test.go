package hosted_test

import (
	"context"
	"fmt"
	"io"
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
			l.st.PutText(ctx, name, store.KindPlan, plan)
		}
	}
	if err := l.src.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	req := &finger.Request{Query: finger.Query{User: "bench05000"}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.rs.ServeFinger(ctx, io.Discard, req)
	}
}
