package main

import (
	endian "encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpQueues asks the kernel (sock_diag over netlink) for one IPv4 TCP
// socket, named by its local and remote address, and returns the bytes
// received and not yet read by its process (rq) and the bytes sent and not
// yet acknowledged (wq). Unlike a read of /proc/net/tcp, the lookup names
// the socket exactly, so that other tests' connections cannot hide it.
func tcpQueues(local, remote *net.TCPAddr) (rq, wq uint32, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)

	// struct nlmsghdr, then struct inet_diag_req_v2.
	const hdrLen, reqLen = 16, 56
	msg := make([]byte, hdrLen+reqLen)
	ne := endian.NativeEndian
	ne.PutUint32(msg[0:], hdrLen+reqLen)
	ne.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(msg[8:], 1) // sequence
	req := msg[hdrLen:]
	req[0] = unix.AF_INET
	req[1] = unix.IPPROTO_TCP
	ne.PutUint32(req[4:], 0xffffffff) // every state
	id := req[8:]                     // struct inet_diag_sockid
	endian.BigEndian.PutUint16(id[0:], uint16(local.Port))
	endian.BigEndian.PutUint16(id[2:], uint16(remote.Port))
	copy(id[4:8], local.IP.To4())
	copy(id[20:24], remote.IP.To4())
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, fmt.Errorf("sock_diag: send: %w", err)
	}

	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag: receive: %w", err)
	}
	buf = buf[:n]
	if len(buf) < hdrLen {
		return 0, 0, fmt.Errorf("sock_diag: short answer (%d bytes)", len(buf))
	}
	switch typ := ne.Uint16(buf[4:]); typ {
	case unix.NLMSG_ERROR:
		if len(buf) >= hdrLen+4 {
			if e := int32(ne.Uint32(buf[hdrLen:])); e != 0 {
				return 0, 0, fmt.Errorf("sock_diag: %s to %s: %w", local, remote, unix.Errno(-e))
			}
		}
		return 0, 0, fmt.Errorf("sock_diag: %s to %s: no such socket", local, remote)
	case unix.SOCK_DIAG_BY_FAMILY:
	default:
		return 0, 0, fmt.Errorf("sock_diag: unexpected answer type %d", typ)
	}
	// struct inet_diag_msg: family, state, timer, retrans (4 bytes), the
	// 48-byte id, expires, rqueue, wqueue, uid, inode.
	m := buf[hdrLen:]
	if len(m) < 4+48+12 {
		return 0, 0, fmt.Errorf("sock_diag: short message (%d bytes)", len(m))
	}
	return ne.Uint32(m[56:]), ne.Uint32(m[60:]), nil
}

// TestTCPQueues checks the helper against a connection whose queues the
// test controls: ten bytes written and not yet read are unread on one end,
// then nothing once read.
func TestTCPQueues(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	la, lb := a.LocalAddr().(*net.TCPAddr), b.LocalAddr().(*net.TCPAddr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rq, _, err := tcpQueues(lb, la)
		if err != nil {
			t.Fatal(err)
		}
		if rq == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpQueues(receiver) unread = %d, want 10", rq)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := io.ReadFull(b, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if rq, _, err := tcpQueues(lb, la); err != nil || rq != 0 {
		t.Errorf("tcpQueues(receiver) after the read = %d, %v; want 0", rq, err)
	}
	if _, _, err := tcpQueues(la, &net.TCPAddr{IP: la.IP, Port: 1}); err == nil {
		t.Errorf("tcpQueues for a connection that does not exist: no error")
	}
}
