package passwd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/userinfotest"
)

func TestConformanceAccounts(t *testing.T) {
	src := &Accounts{Path: "testdata/passwd", NoNSS: true}
	userinfotest.TestAccounts(t, src, []string{"root", "fgtest_alice", "fgtest_bob", "fgtest_carol", "élodie", "lastline"})
}

func TestConformanceFiles(t *testing.T) {
	needRoot(t)
	mkhome := func(name string, hidden bool, files map[string]string) userinfotest.UserFiles {
		home := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(home, 0o755); err != nil {
			t.Fatal(err)
		}
		chownChmod(t, home, 0o755, userUID)
		u := userinfotest.UserFiles{
			Account: &userinfo.Account{Login: name, UID: userUID, Home: home},
			Files:   map[string][]byte{},
			Hidden:  hidden,
		}
		for n, data := range files {
			mkfile(t, filepath.Join(home, n), data, 0o644, userUID)
			u.Files[n] = []byte(data)
		}
		if hidden {
			mkfile(t, filepath.Join(home, ".nofinger"), "", 0o600, userUID)
		}
		return u
	}
	alice := mkhome("alice", false, map[string]string{".plan": "Plan.\n", ".project": "Project: 你好\n", ".pgpkey": "KEY"})
	bob := mkhome("bob", false, nil)
	// An unpublished .plan (mode 0600) must read as not found.
	mkfile(t, filepath.Join(bob.Account.Home, ".plan"), "private\n", 0o600, userUID)
	hidden := mkhome("hidden", true, map[string]string{".plan": "x"})
	userinfotest.TestFiles(t, &Files{}, alice, bob, hidden)
}
