package main

const shortUsage = "usage: finger [-lmsp] [-c] [-8] [-u] [-a] [-T duration] [user ...] [user@host ...] [@host ...]\n" +
	"Try 'finger -h' for more information.\n"

const usageText = `usage: finger [-lmsp] [-c] [-8] [-u] [-a] [-T duration] [options] [user ...] [user@host ...] [@host ...]

Shows who is logged in and information about users, on this host (no @host)
or on finger servers. Several operands are answered in order, one blank
line between replies.

Operands:
  user                 this host's user (login or real name); consecutive
                       names are looked up together
  user@host            ask host about user; host may be name, name:port,
                       IPv4[:port], [IPv6] or [IPv6]:port (default port 79)
  @host                ask host who is logged in
  user@host1@host2     ask host2 to forward the query "user@host1"
  finger://host[:port]/request   finger URIs (RFC 1288 request in the path)
  finger://user@host[:port]

Options:
  -l     long format; sends /W to remote hosts
  -s     short format (local answers)
  -m     match login names only, not real names (local answers)
  -p     omit .plan, .project and .pgpkey (local answers)
  -c     show bytes below 0x20 (control characters) unescaped
  -8     show bytes above 0x7E unescaped (Latin-1, Chinese, other legacy sets)
  -u     show valid UTF-8 as text; controls and escape sequences stay escaped
         (the default in a UTF-8 locale)
  -a     strict RFC 1288 filter (ASCII), whatever the locale or defaults
  -filter MODE          strict, utf8, control, high or raw (control and high)
  -T, -timeout DUR      total time for one reply (default 60s)
  -connect-timeout DUR  time to connect (default 5s)
  -idle-timeout DUR     longest wait for more data (default 30s)
  -max-bytes N          reply byte cap, K/M/G suffixes allowed (default 4M)
  -h, -help             this text
  -v, --version         print the version
  --                    end of options: later words are names

Without -a, -c, -8, -u or -filter, the mode is taken from FINGER_FILTER, then
from "filter = MODE" in /etc/finger.conf, then from the locale (LC_ALL,
LC_CTYPE, LANG): utf8 in a UTF-8 locale, strict otherwise. Strict lets only
TAB, CR, LF and 0x20-0x7E pass; other bytes are shown as ^X, ^? or \xHH.

Exit status: 0 ok, 1 other failure, 2 usage, 3 unknown host,
4 connection refused, 5 timed out, 6 reply truncated at the byte cap,
130 interrupted. With several operands, the first failure's status.
`
