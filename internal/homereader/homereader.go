// Package homereader reads the files users publish in their home
// directories (.plan, .project, .pgpkey) and looks for ~/.nofinger on
// behalf of fingerd, from a separate process.
//
// Homes of mode 0700 (the default of adduser and useradd on Debian) can be
// searched only with CAP_DAC_READ_SEARCH. fingerd started as root keeps
// that capability in a small reader process alone, confined by Landlock to
// the home directories, and serves queries from a process with no
// capability at all. The serving process asks the reader over a socket
// pair (net/rpc); the reader answers only for the published file names and
// applies the same checks as passwd.Files (regular file, owned by the
// user, readable by others, no symbolic link, size cap), so a compromised
// serving process can obtain nothing it could not read without the
// capability but the published files themselves and the existence of
// ~/.nofinger.
package homereader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/rpc"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/passwd"
)

// published lists the file names the reader reads; ~/.nofinger is only
// looked for, never read.
var published = map[string]bool{".plan": true, ".project": true, ".pgpkey": true}

// maxLimit caps the bytes one request may ask for.
const maxLimit = 16 << 20

// requestTimeout bounds the reader's work for one request (a hung NFS
// home); the serving process gives up earlier, at its query's deadline.
const requestTimeout = 30 * time.Second

// Request names a user's home and, for ReadFile, the file and how much of it.
type Request struct {
	Login string
	UID   uint32
	Home  string
	Name  string
	Limit int64
	// HideUnreadable is passwd.Files.HideUnreadableHomes for Hidden.
	HideUnreadable bool
}

// FileReply is the answer to ReadFile. Err is set when the file is not
// published (it is for the operator's log).
type FileReply struct {
	Data      []byte
	Truncated bool
	Err       string
}

// HiddenReply is the answer to Hidden.
type HiddenReply struct {
	Hidden bool
}

// Homes is the reader's RPC receiver; its methods are called through Serve.
type Homes struct {
	shown, hidden passwd.Files // HideUnreadableHomes false, true
}

func check(req Request) error {
	if !filepath.IsAbs(req.Home) || filepath.Clean(req.Home) != req.Home || strings.ContainsRune(req.Home, 0) {
		return fmt.Errorf("homereader: home %q is not a clean absolute path", req.Home)
	}
	return nil
}

func (req Request) account() *userinfo.Account {
	return &userinfo.Account{Login: req.Login, UID: req.UID, Home: req.Home}
}

// ReadFile reads a published file, as passwd.Files.ReadFile does. Names
// other than .plan, .project and .pgpkey are refused.
func (h *Homes) ReadFile(req Request, rep *FileReply) error {
	if err := check(req); err != nil {
		rep.Err = err.Error()
		return nil
	}
	if !published[req.Name] {
		rep.Err = fmt.Sprintf("homereader: %q is not a published file name", req.Name)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	uf, err := h.shown.ReadFile(ctx, req.account(), req.Name, min(max(req.Limit, 0), maxLimit))
	if err != nil {
		rep.Err = err.Error()
		return nil
	}
	rep.Data, rep.Truncated = uf.Data, uf.Truncated
	return nil
}

// Hidden reports whether the user has a ~/.nofinger, as
// passwd.Files.Hidden does.
func (h *Homes) Hidden(req Request, rep *HiddenReply) error {
	if err := check(req); err != nil {
		rep.Hidden = true
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	f := &h.shown
	if req.HideUnreadable {
		f = &h.hidden
	}
	rep.Hidden = f.Hidden(ctx, req.account())
	return nil
}

// Serve answers requests on conn until it is closed. It runs in the
// reader process, after the privilege drop and Landlock.
func Serve(conn io.ReadWriteCloser) {
	s := rpc.NewServer()
	h := &Homes{hidden: passwd.Files{HideUnreadableHomes: true}}
	if err := s.RegisterName("Homes", h); err != nil {
		panic(err) // the method set is fixed: a failure is a programming error
	}
	s.ServeConn(conn)
}

// Client asks a reader process. It is safe for concurrent use.
type Client struct {
	rpc *rpc.Client
	// OnFailure, when set before first use, is called once when the
	// connection to the reader fails.
	OnFailure func(error)
	once      sync.Once
}

// NewClient returns a Client speaking to the reader on conn.
func NewClient(conn io.ReadWriteCloser) *Client {
	return &Client{rpc: rpc.NewClient(conn)}
}

// Close closes the connection; the reader then exits.
func (c *Client) Close() error { return c.rpc.Close() }

// errFailed marks a request the reader did not answer.
var errFailed = errors.New("homereader: the reader process is gone")

func (c *Client) call(ctx context.Context, method string, req Request, rep any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	call := c.rpc.Go("Homes."+method, req, rep, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		if call.Error != nil {
			if c.OnFailure != nil {
				c.once.Do(func() { c.OnFailure(call.Error) })
			}
			return fmt.Errorf("%w: %w", errFailed, call.Error)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Files returns a userinfo.Files that reads through the reader, with
// passwd.Files' HideUnreadableHomes set to hideUnreadable.
func (c *Client) Files(hideUnreadable bool) userinfo.Files {
	return &files{c: c, hide: hideUnreadable}
}

type files struct {
	c    *Client
	hide bool
}

func request(a *userinfo.Account) Request {
	return Request{Login: a.Login, UID: a.UID, Home: a.Home}
}

// ReadFile implements userinfo.Files. Every failure wraps
// userinfo.ErrNotFound.
func (f *files) ReadFile(ctx context.Context, a *userinfo.Account, name string, limit int64) (userinfo.UserFile, error) {
	if a == nil {
		return userinfo.UserFile{}, fmt.Errorf("homereader: no account: %w", userinfo.ErrNotFound)
	}
	req := request(a)
	req.Name, req.Limit = name, limit
	var rep FileReply
	if err := f.c.call(ctx, "ReadFile", req, &rep); err != nil {
		return userinfo.UserFile{}, fmt.Errorf("homereader: %s of %s: %w: %w", name, a.Login, userinfo.ErrNotFound, err)
	}
	if rep.Err != "" {
		return userinfo.UserFile{}, fmt.Errorf("homereader: %s: %w", rep.Err, userinfo.ErrNotFound)
	}
	return userinfo.UserFile{Data: rep.Data, Truncated: rep.Truncated}, nil
}

// Hidden implements userinfo.Files. A reader that does not answer hides
// the user: an opt-out is never lost to a fault.
func (f *files) Hidden(ctx context.Context, a *userinfo.Account) bool {
	if a == nil {
		return true
	}
	req := request(a)
	req.HideUnreadable = f.hide
	var rep HiddenReply
	if err := f.c.call(ctx, "Hidden", req, &rep); err != nil {
		return true
	}
	return rep.Hidden
}
