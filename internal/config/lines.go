package config

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// keyLines maps each key path set in a TOML document to the line that sets
// it, for error messages. It understands the forms a configuration file
// uses: [table], [[array]] (entries numbered from 0, and also recorded
// without the number), and key = value with bare, quoted or dotted keys.
// It is best effort: a key it cannot place simply has no line.
func keyLines(data []byte) map[string]int {
	lines := make(map[string]int)
	set := func(k string, n int) {
		if _, ok := lines[k]; !ok {
			lines[k] = n
		}
	}
	arrays := make(map[string]int) // [[name]] → entries seen
	var table, tableNoIndex string
	inMulti := "" // the delimiter of an open multi-line string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxFileBytes+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if inMulti != "" {
			if strings.Count(line, inMulti)%2 == 1 {
				inMulti = ""
			}
			continue
		}
		switch {
		case line == "" || line[0] == '#':
			continue
		case strings.HasPrefix(line, "[["):
			end := strings.Index(line, "]]")
			if end < 0 {
				continue
			}
			name := joinKey(splitKey(line[2:end]))
			i := arrays[name]
			arrays[name]++
			table = name + "." + strconv.Itoa(i)
			tableNoIndex = name
			set(table, n)
			set(name, n)
			continue
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue
			}
			table = joinKey(splitKey(line[1:end]))
			tableNoIndex = table
			set(table, n)
			continue
		}
		eq := keyEnd(line)
		if eq < 0 {
			continue
		}
		key := joinKey(splitKey(line[:eq]))
		if key == "" {
			continue
		}
		for _, t := range []string{table, tableNoIndex} {
			if t == "" {
				set(key, n)
			} else {
				set(t+"."+key, n)
			}
		}
		rest := line[eq+1:]
		for _, d := range []string{`"""`, `'''`} {
			if strings.Count(rest, d)%2 == 1 {
				inMulti = d
				break
			}
		}
	}
	return lines
}

// keyEnd returns the index of the '=' that ends the key part of a
// key = value line, or -1.
func keyEnd(line string) int {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return i
		case c == '#':
			return -1
		}
	}
	return -1
}

// splitKey splits a dotted TOML key, removing quotes and spaces.
func splitKey(s string) []string {
	var parts []string
	var b strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, b.String())
			b.Reset()
		case c == ' ' || c == '\t':
		default:
			b.WriteByte(c)
		}
	}
	return append(parts, b.String())
}

func joinKey(parts []string) string { return strings.Join(parts, ".") }
