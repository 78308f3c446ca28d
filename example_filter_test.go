package finger_test

import (
	"fmt"
	"os"

	"github.com/openfinger/finger"
)

func ExampleFilter() {
	reply := "Plan: 张伟\x1b[2J\x07 caf\xe9 \u202eevil\r\n"
	for _, f := range []finger.Filter{
		{},                // strict RFC 1288
		{AllowHigh: true}, // the RFC's switch for bytes above 0x7E
		{UTF8: true},      // valid UTF-8 as text, everything dangerous escaped
	} {
		fmt.Printf("%q\n", f.String(reply))
	}
	// Output:
	// "Plan: \\xe5\\xbc\\xa0\\xe4\\xbc\\x9f^[[2J^G caf\\xe9 \\xe2\\x80\\xaeevil\r\n"
	// "Plan: 张伟^[[2J^G caf\xe9 \u202eevil\r\n"
	// "Plan: 张伟^[[2J^G caf\\xe9 \\u202eevil\r\n"
}

// A lone CR would let a line overwrite the one before it on a terminal;
// the filter makes it a line end. CR LF stays CR LF.
func ExampleFilter_lineEnds() {
	fmt.Printf("%q\n", finger.Filter{}.String("Plan: nice\rPlan: evil\r\nend\r\r\n"))
	// Output:
	// "Plan: nice\r\nPlan: evil\r\nend\r\n"
}

// A FilterWriter filters a stream. A character split between two Writes
// still comes out whole; Close flushes a sequence left incomplete.
func ExampleFilter_NewWriter() {
	w := finger.Filter{UTF8: true}.NewWriter(os.Stdout)
	w.Write([]byte("中\xe6"))
	w.Write([]byte("\x96\x87 \x1b[0m\n"))
	w.Write([]byte("cut \xe6\x96"))
	w.Close()
	fmt.Println()
	// Output:
	// 中文 ^[[0m
	// cut \xe6\x96
}
