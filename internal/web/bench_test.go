package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/openfinger/finger/internal/store"
)

// BenchmarkPublish measures PUT /~NAME/plan through the whole server
// (token check, store write, the copy refreshed) with 10,000 users.
func BenchmarkPublish(b *testing.B) {
	s := newSite(b, b.TempDir())
	ctx := context.Background()
	const users = 10000
	for i := range users {
		name := fmt.Sprintf("bench%05d", i)
		if err := s.st.CreateUser(ctx, store.User{Name: name}, store.HashToken(name)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.src.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	plan := strings.Repeat("p", 1000)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	var n int64
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			name := fmt.Sprintf("bench%05d", (i*7919+int(n))%users)
			req, _ := http.NewRequest("PUT", s.ts.URL+"/~"+name+"/plan", strings.NewReader(plan))
			req.SetBasicAuth(name, name)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != 204 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
