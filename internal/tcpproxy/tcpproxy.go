// Package tcpproxy is a loopback TCP proxy for tests that break a NATS
// client's connection as a network fault would: it can lose what the
// server sends (the bytes are gone, as on a connection that breaks) and
// cut every connection (the clients reconnect at once, the server is up).
package tcpproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards loopback TCP connections to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	drop   atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

// New starts a proxy to target (host:port) on a free loopback port; it is
// closed, with every connection, when the test ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	go p.accept()
	return p
}

// URL is the proxy's address as a NATS URL.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Drop starts (true) or stops (false) losing what the target sends.
func (p *Proxy) Drop(on bool) { p.drop.Store(on) }

// Cut closes every proxied connection and reports how many client
// connections it broke.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n
}

// Blip loses what the target sends for d (deliveries to the clients'
// waiting fetches among it), then cuts every connection. It reports
// whether there was a connection to break.
func (p *Proxy) Blip(d time.Duration) bool {
	p.Drop(true)
	time.Sleep(d) // the fault's duration, not a synchronisation
	n := p.Cut()
	p.Drop(false)
	return n > 0
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && !p.drop.Load() {
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
		}()
	}
}
