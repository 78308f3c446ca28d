package hostusers

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
)

func testOptions(t *testing.T) Options {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	data := "root:x:0:0:root:/root:/bin/bash\n" +
		"hu_alice:x:1001:1001:Alice Liddell,Room 101,,:" + dir + "/nohome:/bin/bash\n"
	if err := os.WriteFile(pw, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Sources = config.Sources{
		Passwd:    pw,
		Sessions:  config.SessionsNone,
		LoginDefs: filepath.Join(dir, "login.defs"),
	}
	return o
}

func ask(t *testing.T, o Options, line string) string {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	q, err := finger.ParseQuery(line)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.ServeFinger(context.Background(), &b, &finger.Request{Query: q, Line: line})
	return b.String()
}

func TestNew(t *testing.T) {
	o := testOptions(t)
	if got := ask(t, o, "hu_alice"); !strings.Contains(got, "Login: hu_alice") || !strings.Contains(got, "Alice Liddell") {
		t.Errorf("hu_alice: %q", got)
	}
	if got := ask(t, o, "liddell"); !strings.Contains(got, "Login: hu_alice") {
		t.Errorf("real name: %q", got)
	}
	o.Policy.MatchRealNames = false
	if got := ask(t, o, "liddell"); strings.Contains(got, "Login: hu_alice") {
		t.Errorf("real name with matching off: %q", got)
	}
	if got := ask(t, o, "root"); strings.Contains(got, "Login: root") {
		t.Errorf("root shown by default: %q", got)
	}
	o.Policy.List = false
	if got := ask(t, o, ""); !strings.Contains(got, "denied") {
		t.Errorf("list off: %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	o := testOptions(t)
	o.Sources.Sessions = "carrier-pigeon"
	if _, err := New(o); err == nil {
		t.Error("unknown session source accepted")
	}
	o = testOptions(t)
	o.Policy.MinUID = -1
	if _, err := New(o); err == nil {
		t.Error("negative min_uid accepted")
	}
}

func TestMinUIDFromLoginDefs(t *testing.T) {
	o := testOptions(t)
	os.WriteFile(o.Sources.LoginDefs, []byte("UID_MIN 2000\n"), 0o644)
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Policy.MinUID != 2000 {
		t.Errorf("MinUID = %d, want 2000", r.Policy.MinUID)
	}
	o.Policy.MinUID = 500
	if r, _ = New(o); r.Policy.MinUID != 500 {
		t.Errorf("MinUID = %d, want 500", r.Policy.MinUID)
	}
}
