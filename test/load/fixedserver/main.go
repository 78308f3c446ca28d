// Command fixedserver is the smallest useful finger server: it reads one
// line and answers with a fixed reply. Benchmarks run it beside fingerd to
// show the machine's ceiling for the same reply size.
//
//	fixedserver -listen 127.0.0.1:7990 -reply-file reply.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7990", "listen `address`")
	replyFile := flag.String("reply-file", "", "reply bytes (default: a one-line reply)")
	flag.Parse()
	reply := []byte("finger: fixed reply\r\n")
	if *replyFile != "" {
		b, err := os.ReadFile(*replyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fixedserver:", err)
			os.Exit(1)
		}
		reply = b
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fixedserver:", err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := bufio.NewReaderSize(c, 512).ReadSlice('\n'); err != nil {
				return
			}
			c.Write(reply)
		}()
	}
}
