package config

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParse checks that any input gives a configuration or an error, never
// a panic; that an error names the file; and that a configuration that
// parses and validates survives Encode and Parse unchanged in meaning.
func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("[server]\nlisten = [\"127.0.0.1:79\"]\nrate = 1.5\n"))
	f.Add([]byte("[[virtual]]\nlogin = \"a\"\ntext = \"x\"\n"))
	f.Add([]byte("[server]\nread_timeout = \"1s\"\n[policy]\nmin_uid = 1000\n"))
	f.Add([]byte("x = [\n"))
	f.Add([]byte("[a.b.c]\n'q' = { x = 1 }\n"))
	if data, err := os.ReadFile("../../contrib/fingerd.toml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if !bytes.Contains([]byte(err.Error()), []byte("fuzz.toml")) {
				t.Fatalf("Parse error %q does not name the file", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		var buf bytes.Buffer
		if err := c.Encode(&buf); err != nil {
			t.Fatalf("Encode of a valid config = %v", err)
		}
		c2, err := Parse(buf.Bytes(), "again.toml")
		if err != nil {
			t.Fatalf("Parse(Encode(c)) = %v\n%s", err, buf.Bytes())
		}
		if err := c2.Validate(); err != nil {
			t.Fatalf("Validate(Parse(Encode(c))) = %v\n%s", err, buf.Bytes())
		}
	})
}
