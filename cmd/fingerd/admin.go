package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/passwd"
)

const adminUsage = `usage:
  fingerd user add NAME [-name "Real Name"] [-listed] [-config FILE]
  fingerd user token NAME [-config FILE]
  fingerd user set NAME [-name "Real Name"] [-listed=true|false] [-hidden=true|false] [-config FILE]
  fingerd user del NAME [-config FILE]
  fingerd user list [-config FILE]
  fingerd store backup FILE [-config FILE]
  fingerd store migrate [-config FILE]
  fingerd store copy FROM_URL [-config FILE]

They act on the store of [store] url, which the running daemon follows:
changes show in its answers within [store] poll_interval. Run as root,
they act as the daemon's serving user (server.user), so that the files the
store creates belong to it; store backup writes FILE as the user who runs it.
`

// adminFlags are the flags of the administration commands; they may come
// before, between or after the arguments.
type adminFlags struct {
	configPath  string
	configGiven bool
	name        string
	nameGiven   bool
	listed      bool
	listedGiven bool
	hidden      bool
	hiddenGiven bool
}

func parseAdmin(args []string, stdout io.Writer) (*adminFlags, []string, error) {
	a := &adminFlags{}
	fs := flag.NewFlagSet("fingerd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.configPath, "config", "", "configuration file")
	fs.StringVar(&a.name, "name", "", "real name")
	fs.BoolVar(&a.listed, "listed", false, "listed in {C}, the web directory and the feed of all users")
	fs.BoolVar(&a.hidden, "hidden", false, "hidden, as by ~/.nofinger")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				io.WriteString(stdout, adminUsage)
				return nil, nil, errHelp
			}
			return nil, nil, usageError{fmt.Sprintf("%v\n%s", err, adminUsage)}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "config":
			a.configGiven = true
		case "name":
			a.nameGiven = true
		case "listed":
			a.listedGiven = true
		case "hidden":
			a.hiddenGiven = true
		}
	})
	return a, pos, nil
}

// runAdmin runs "fingerd user ..." and "fingerd store ...".
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, pos, err := parseAdmin(args, stdout)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	want := map[string]int{
		"user add": 1, "user token": 1, "user set": 1, "user del": 1, "user list": 0,
		"store backup": 1, "store migrate": 0, "store copy": 1,
	}
	if len(pos) < 2 {
		return usageError{"missing command\n" + adminUsage}
	}
	cmd := pos[0] + " " + pos[1]
	n, ok := want[cmd]
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q\n%s", cmd, adminUsage)}
	}
	if len(pos)-2 != n {
		return usageError{fmt.Sprintf("%s takes %d argument(s)\n%s", cmd, n, adminUsage)}
	}
	if (a.nameGiven || a.listedGiven) && cmd != "user add" && cmd != "user set" || a.hiddenGiven && cmd != "user set" {
		return usageError{fmt.Sprintf("%s: -name, -listed and -hidden are for user add and user set\n%s", cmd, adminUsage)}
	}
	cfg, err := loadConfig(&options{configPath: a.configPath, configGiven: a.configGiven})
	if err != nil {
		return err
	}
	if cfg.Store.URL == "" {
		return fmt.Errorf("%s: no store: set [store] url in %s", cmd, describeSource(cfg))
	}
	var arg string
	if n == 1 {
		arg = pos[2]
	}
	if cmd != "store backup" {
		if err := adminIdentity(cfg); err != nil {
			return err
		}
	} else if p := sqlitePath(cfg.Store.URL); p != "" {
		// A backup never creates the store it copies.
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("store backup: %w", err)
		}
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	switch cmd {
	case "user add":
		return userAdd(ctx, cfg, st, arg, a, stdout, stderr)
	case "user token":
		token, hash := store.NewToken()
		if err := st.SetToken(ctx, arg, hash); err != nil {
			return fmt.Errorf("user token: %w", err)
		}
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "fingerd: new publishing token for %s (the old one no longer works; this one is not shown again)\n", arg)
		return nil
	case "user set":
		u, err := st.User(ctx, arg)
		if err != nil {
			return fmt.Errorf("user set: %w", err)
		}
		if a.nameGiven {
			u.RealName = a.name
		}
		if a.listedGiven {
			u.Listed = a.listed
		}
		if a.hiddenGiven {
			u.Hidden = a.hidden
		}
		if err := st.UpdateUser(ctx, u); err != nil {
			return fmt.Errorf("user set: %w", err)
		}
		return nil
	case "user del":
		if err := st.DeleteUser(ctx, arg); err != nil {
			return fmt.Errorf("user del: %w", err)
		}
		return nil
	case "user list":
		return userList(ctx, st, stdout)
	case "store backup":
		b, ok := st.(store.Backuper)
		if !ok {
			return fmt.Errorf("store backup: this store cannot copy itself; use the database's own tools (pg_dump)")
		}
		if err := b.Backup(ctx, arg); err != nil {
			return fmt.Errorf("store backup: %w", err)
		}
		fmt.Fprintf(stderr, "fingerd: store copied to %s\n", arg)
		return nil
	case "store copy":
		return storeCopy(ctx, arg, st, stdout)
	case "store migrate":
		v, err := st.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("store migrate: %w", err)
		}
		fmt.Fprintf(stdout, "schema version %d\n", v)
		return nil
	}
	return nil
}

// adminIdentity gives up root for the serving user, so that the files a
// SQLite store creates belong to the daemon that writes them.
func adminIdentity(cfg *config.Config) error {
	if !privilege.IsRoot() {
		return nil
	}
	id, err := privilege.Lookup(cfg.Server.User, cfg.Server.Group)
	if err != nil {
		return err
	}
	if err := giveStoreDir(cfg, id.UID, id.GID); err != nil {
		return err
	}
	return privilege.Drop(id, privilege.Options{})
}

func userAdd(ctx context.Context, cfg *config.Config, st store.Store, name string, a *adminFlags, stdout, stderr io.Writer) error {
	if err := store.ValidName(name); err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	if err := store.ValidRealName(a.name); err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	for _, v := range cfg.Virtual {
		if strings.EqualFold(v.Login, name) {
			return fmt.Errorf("user add: %q is a [[virtual]] user of the configuration", name)
		}
	}
	accts := &passwd.Accounts{Path: cfg.Sources.Passwd}
	if _, err := accts.Lookup(ctx, name); err == nil {
		return fmt.Errorf("user add: %q is an account on this host: its finger answer is the account's", name)
	} else if !errors.Is(err, userinfo.ErrNotFound) {
		return fmt.Errorf("user add: cannot tell whether %q is an account on this host: %w", name, err)
	}
	token, hash := store.NewToken()
	u := store.User{Name: name, RealName: a.name, Listed: a.listed}
	if err := st.CreateUser(ctx, u, hash); err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "fingerd: added %s; the line above is the publishing token, not shown again:\n"+
		"  curl -u %s:TOKEN -T ~/.plan http://HOST:PORT/~%s/plan\n", name, name, name)
	return nil
}

func userList(ctx context.Context, st store.Store, stdout io.Writer) error {
	snap, err := st.Snapshot(ctx, 0)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	// Real names go through finger's UTF-8-safe filter, as finger answers
	// do: the store refuses control characters, but not bidirectional
	// overrides, which would reorder the terminal's line.
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLISTED\tHIDDEN\tCREATED\tPLAN CHANGED\tREAL NAME")
	yn := map[bool]string{true: "yes", false: "no"}
	for _, e := range snap.Users {
		changed := "-"
		if t, ok := e.Texts[store.KindPlan]; ok {
			changed = t.Changed.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, yn[e.Listed], yn[e.Hidden],
			e.Created.Local().Format(time.DateOnly), changed, finger.Filter{UTF8: true}.String(e.RealName))
	}
	return tw.Flush()
}
