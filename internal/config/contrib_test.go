package config

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestContribExample checks that the shipped example is valid, gives the
// defaults, and mentions every key (the [[virtual]] keys in comments).
func TestContribExample(t *testing.T) {
	data, err := os.ReadFile("../../contrib/fingerd.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "contrib/fingerd.toml")
	if err != nil {
		t.Fatalf("Parse(contrib/fingerd.toml) = %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(contrib/fingerd.toml) = %v", err)
	}
	want := Default()
	c.lines, c.Path = nil, ""
	if !reflect.DeepEqual(c, want) {
		t.Errorf("contrib/fingerd.toml differs from the defaults:\n got %+v\nwant %+v", c, want)
	}
	example := Default()
	example.Virtual = []Virtual{{Login: "x", Text: "x"}}
	var buf bytes.Buffer
	if err := example.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`(?m)^([a-z_]+) = `)
	for _, m := range keyRE.FindAllStringSubmatch(buf.String(), -1) {
		if !regexp.MustCompile(`(?m)^[# ]*` + m[1] + ` = `).Match(data) {
			t.Errorf("contrib/fingerd.toml does not mention key %q", m[1])
		}
	}
	for _, key := range []string{"file", "program"} {
		if !strings.Contains(string(data), "# "+key+" = ") {
			t.Errorf("contrib/fingerd.toml does not mention virtual key %q", key)
		}
	}
}
