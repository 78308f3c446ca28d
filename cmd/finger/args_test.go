package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger"
)

// wire is one expected question: the address connected to ("" for a local
// answer) and the exact request line sent, CRLF included.
type wire struct {
	addr string
	req  string
}

func (w wire) String() string { return fmt.Sprintf("{%s %q}", w.addr, w.req) }

func wires(ts []target) []wire {
	var out []wire
	for _, t := range ts {
		out = append(out, wire{t.Addr, t.Query.String() + "\r\n"})
	}
	return out
}

func TestTargets(t *testing.T) {
	tests := []struct {
		args []string
		want []wire
	}{
		// The netkit client's bytes (peers.md §3).
		{[]string{"alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
		{[]string{"-l", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "/W alice\r\n"}}},
		{[]string{"@127.0.0.1"}, []wire{{"127.0.0.1:79", "\r\n"}}},
		{[]string{"-l", "@127.0.0.1"}, []wire{{"127.0.0.1:79", "/W \r\n"}}},
		{[]string{"-s", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
		{[]string{"-m", "-p", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
		{[]string{"-mp", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
		{[]string{"alice@host1@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice@host1\r\n"}}},
		{[]string{"-l", "alice@h1@h2@127.0.0.1"}, []wire{{"127.0.0.1:79", "/W alice@h1@h2\r\n"}}},
		{[]string{"@h1@127.0.0.1"}, []wire{{"127.0.0.1:79", "@h1\r\n"}}},
		{[]string{"a@127.0.0.1", "b@127.0.0.2"}, []wire{{"127.0.0.1:79", "a\r\n"}, {"127.0.0.2:79", "b\r\n"}}},
		// Options anywhere before "--"; combined short options.
		{[]string{"alice@127.0.0.1", "-l"}, []wire{{"127.0.0.1:79", "/W alice\r\n"}}},
		{[]string{"-lp", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "/W alice\r\n"}}},
		{[]string{"-pl8", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "/W alice\r\n"}}},
		// Names that look like options.
		{[]string{"--", "-l@127.0.0.1"}, []wire{{"127.0.0.1:79", "-l\r\n"}}},
		{[]string{"-l", "--", "-x@127.0.0.1", "--"}, []wire{{"127.0.0.1:79", "/W -x\r\n"}, {"", "/W --\r\n"}}},
		{[]string{"--", "-rf"}, []wire{{"", "-rf\r\n"}}},
		{[]string{"-"}, []wire{{"", "-\r\n"}}},
		// Host forms.
		{[]string{"alice@localhost"}, []wire{{"localhost:79", "alice\r\n"}}},
		{[]string{"alice@127.0.0.1:7979"}, []wire{{"127.0.0.1:7979", "alice\r\n"}}},
		{[]string{"alice@[::1]"}, []wire{{"[::1]:79", "alice\r\n"}}},
		{[]string{"alice@[::1]:7979"}, []wire{{"[::1]:7979", "alice\r\n"}}},
		{[]string{"alice@::1"}, []wire{{"[::1]:79", "alice\r\n"}}},
		{[]string{"alice@example.org:79"}, []wire{{"example.org:79", "alice\r\n"}}},
		{[]string{"alice@h1@[2001:db8::1]:7979"}, []wire{{"[2001:db8::1]:7979", "alice@h1\r\n"}}},
		// UTF-8 names pass unchanged.
		{[]string{"张伟@127.0.0.1"}, []wire{{"127.0.0.1:79", "张伟\r\n"}}},
		// URIs.
		{[]string{"finger://127.0.0.1"}, []wire{{"127.0.0.1:79", "\r\n"}}},
		{[]string{"finger://127.0.0.1/"}, []wire{{"127.0.0.1:79", "\r\n"}}},
		{[]string{"finger://127.0.0.1:7979/alice"}, []wire{{"127.0.0.1:7979", "alice\r\n"}}},
		{[]string{"finger://alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
		{[]string{"finger://alice@[::1]:7979"}, []wire{{"[::1]:7979", "alice\r\n"}}},
		{[]string{"-l", "finger://alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "/W alice\r\n"}}},
		{[]string{"finger://127.0.0.1/%2FW%20alice"}, []wire{{"127.0.0.1:79", "/W alice\r\n"}}},
		{[]string{"FINGER://127.0.0.1/alice"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
		// Local answers: consecutive names together, none = the list.
		{nil, []wire{{"", "\r\n"}}},
		{[]string{"-l"}, []wire{{"", "/W \r\n"}}},
		{[]string{"alice"}, []wire{{"", "alice\r\n"}}},
		{[]string{"alice", "bob"}, []wire{{"", "alice bob\r\n"}}},
		{[]string{"alice", "x@127.0.0.1", "bob"}, []wire{{"", "alice\r\n"}, {"127.0.0.1:79", "x\r\n"}, {"", "bob\r\n"}}},
		// Value options do not eat operands.
		{[]string{"-T", "10s", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
		{[]string{"-lT10", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "/W alice\r\n"}}},
		{[]string{"--timeout=3s", "-connect-timeout", "1s", "alice@127.0.0.1"}, []wire{{"127.0.0.1:79", "alice\r\n"}}},
	}
	for _, tt := range tests {
		o, err := parseArgs(tt.args)
		if err != nil {
			t.Errorf("parseArgs(%q) error: %v", tt.args, err)
			continue
		}
		ts, err := o.targets()
		if err != nil {
			t.Errorf("targets(%q) error: %v", tt.args, err)
			continue
		}
		if got := wires(ts); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("targets(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string // part of the message
	}{
		{[]string{"-x"}, "unknown option -x"},
		{[]string{"-lx"}, "unknown option -x"},
		{[]string{"--long"}, "unknown option --long"},
		{[]string{"-T"}, "needs"},
		{[]string{"-timeout"}, "needs a value"},
		{[]string{"-T", "soon"}, "invalid duration"},
		{[]string{"-T", "0"}, "must be positive"},
		{[]string{"-T", "-1s"}, "must be positive"},
		{[]string{"-max-bytes", "0"}, "invalid size"},
		{[]string{"-max-bytes", "lots"}, "invalid size"},
		{[]string{"-filter", "rainbow"}, "unknown filter mode"},
		{[]string{"-u", "-8"}, "-u cannot be combined"},
		{[]string{"-cu"}, "-u cannot be combined"},
		{[]string{"alice@"}, "empty host name"},
		{[]string{"@"}, "empty host name"},
		{[]string{"alice@@127.0.0.1"}, "empty host name"},
		{[]string{"alice\r\nbob@127.0.0.1"}, "control character"},
		{[]string{"alice\x00"}, "control character"},
		{[]string{"alice@[::1"}, "missing ']'"},
		{[]string{"alice@host:port"}, "invalid port"},
		{[]string{"alice@host:99999"}, "invalid port"},
		{[]string{"finger://"}, "empty host"},
		{[]string{"finger:///alice"}, "empty host"},
	}
	for _, tt := range tests {
		o, err := parseArgs(tt.args)
		if err == nil {
			_, err = o.targets()
		}
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("args %q: error %v, want a usage error", tt.args, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("args %q: error %q, want it to contain %q", tt.args, err, tt.msg)
		}
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		args []string
		want options
	}{
		{[]string{"-lmsp"}, options{long: true, short: true, noMatch: true, noPlan: true}},
		{[]string{"-c"}, options{filter: finger.Filter{AllowControl: true}, filterSet: true}},
		{[]string{"-8"}, options{filter: finger.Filter{AllowHigh: true}, filterSet: true}},
		{[]string{"-c8"}, options{filter: finger.Filter{AllowControl: true, AllowHigh: true}, filterSet: true}},
		{[]string{"-u"}, options{filter: finger.Filter{UTF8: true}, filterSet: true}},
		{[]string{"-filter=strict"}, options{filterSet: true}},
		{[]string{"--filter", "raw"}, options{filter: finger.Filter{AllowControl: true, AllowHigh: true}, filterSet: true}},
		{[]string{"-filter", "control,high"}, options{filter: finger.Filter{AllowControl: true, AllowHigh: true}, filterSet: true}},
		{[]string{"-T", "2.5"}, options{totalTimeout: 2500 * time.Millisecond}},
		{[]string{"-T1m"}, options{totalTimeout: time.Minute}},
		{[]string{"-connect-timeout=1s", "--idle-timeout", "2s"}, options{connectTimeout: time.Second, idleTimeout: 2 * time.Second}},
		{[]string{"-max-bytes", "1M"}, options{maxBytes: 1 << 20}},
		{[]string{"-max-bytes=1024"}, options{maxBytes: 1024}},
		{[]string{"-max-bytes=64KiB"}, options{maxBytes: 64 << 10}},
		{[]string{"-h"}, options{help: true}},
		{[]string{"--help"}, options{help: true}},
		{[]string{"-help"}, options{help: true}},
		{[]string{"--", "-h"}, options{operands: []string{"-h"}}},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args)
		if err != nil {
			t.Errorf("parseArgs(%q) error: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("parseArgs(%q) = %+v, want %+v", tt.args, *got, tt.want)
		}
	}
}
