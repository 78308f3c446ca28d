package userinfo

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matchResult is what one name of a {U} query found.
type matchResult struct {
	accts  []*Account
	failed bool // a source failed while looking for this name
}

// users answers {U}: the long form of every account the names match.
// Names nobody matches are reported first, as netkit does, each with the
// line an unknown user gets; a hidden user gets exactly the same line.
func (req *request) users(names []string) {
	tooMany := len(names) > req.pol.MaxNames
	if tooMany {
		names = names[:req.pol.MaxNames]
	}
	res := req.match(names)
	if req.ctx.Err() != nil {
		return
	}
	for i := range res {
		if len(res[i].accts) == 0 {
			// Held back, whichever the reason the name is not shown.
			req.rs.pace.wait(req.ctx, req.start, len(names), req.pol.UnknownReplyFloor)
			if req.ctx.Err() != nil {
				return
			}
			break
		}
	}
	if tooMany {
		req.out.line("finger: too many names; only the first " + strconv.Itoa(req.pol.MaxNames) + " are answered.")
	}
	unavailable := false
	for i, name := range names {
		if len(res[i].accts) > 0 {
			continue
		}
		if res[i].failed {
			unavailable = true
			continue
		}
		req.out.str("finger: ")
		req.out.b = appendClean(req.out.b, name)
		req.out.str(": no such user.\n")
	}
	if unavailable {
		req.out.line(MsgUnavailable)
	}

	var people []person
	seen := make(map[string]bool)
	for i := range res {
		for _, a := range res[i].accts {
			if seen[a.Login] {
				continue
			}
			seen[a.Login] = true
			people = append(people, person{acct: a})
		}
	}
	if len(people) == 0 {
		return
	}
	req.loadSessions()
	for i := range people {
		if i > 0 {
			req.out.str("\n")
		}
		people[i].sessions = req.sessionsOf(people[i].acct.Login)
		req.long(&people[i])
		if req.ctx.Err() != nil || req.out.err != nil {
			return
		}
	}
}

// match finds the accounts each name designates: the account with exactly
// that login, or else (when the policy allows it) the ordinary accounts
// with a real-name word equal to the name ignoring case. Accounts the
// policy does not show and hidden accounts are never found.
func (req *request) match(names []string) []matchResult {
	res := make([]matchResult, len(names))
	src := req.rs.Accounts
	if src == nil {
		return res
	}
	pending := make([]bool, len(names))
	anyPending := false
	for i, name := range names {
		if req.ctx.Err() != nil {
			return res
		}
		a, err := src.Lookup(req.ctx, name)
		switch {
		case err == nil && a != nil && a.Login == name:
			if req.pol.shown(a) && !req.hidden(a) {
				res[i].accts = []*Account{a}
				continue
			}
			// Answered as unknown: with the work of an unknown login.
			if u, ok := src.(UnknownLookups); ok {
				u.LookupAsUnknown(req.ctx, name)
			}
		case err != nil && !errors.Is(err, ErrNotFound):
			req.failed("accounts", err, "login", name)
			res[i].failed = true
		}
		pending[i] = true
		anyPending = true
	}
	if !anyPending || !req.pol.MatchRealNames {
		return res
	}
	all, err := src.All(req.ctx)
	if err != nil {
		req.failed("accounts", err)
		for i := range names {
			if pending[i] {
				res[i].failed = true
			}
		}
		// A source that cannot enumerate everything returns what it can.
	}
	if len(all) > req.pol.MaxScan {
		all = all[:req.pol.MaxScan]
	}
	for _, a := range all {
		if req.ctx.Err() != nil {
			return res
		}
		if a == nil || !req.pol.realNameCandidate(a) {
			continue
		}
		checked, hidden := false, false
		for i, name := range names {
			if !pending[i] || len(res[i].accts) >= req.pol.MaxMatches || !realNameMatch(a, name) {
				continue
			}
			if !checked {
				checked, hidden = true, req.hidden(a)
			}
			if !hidden {
				res[i].accts = append(res[i].accts, a)
			}
		}
	}
	return res
}

// realNameMatch reports whether name is a whole word of a's real name,
// compared case-insensitively with Unicode simple folding. As in netkit, a
// name equal to a's login ignoring case never matches a's real name, so
// the capitalised login that '&' expands to does not turn the login
// lookup case-insensitive.
func realNameMatch(a *Account, name string) bool {
	if name == "" || strings.EqualFold(a.Login, name) {
		return false
	}
	return hasWord(a.Name, name)
}

// hasWord reports whether one of the space-separated words of s equals
// word ignoring case.
func hasWord(s, word string) bool {
	for s != "" {
		i := strings.IndexFunc(s, isSpace)
		w := s
		if i >= 0 {
			w, s = s[:i], s[i:]
			_, n := utf8.DecodeRuneInString(s)
			s = s[n:]
		} else {
			s = ""
		}
		if w != "" && strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }
