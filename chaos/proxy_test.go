package chaos

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpProxy forwards loopback TCP connections to a NATS server. blip
// loses what the server sends for a moment, then closes every connection,
// as a network fault would: whatever was in flight is lost, and the clients
// reconnect at once (the server is up).
type tcpProxy struct {
	ln     net.Listener
	target string
	drop   atomic.Bool // lose what the server sends

	mu    sync.Mutex
	conns []net.Conn
	cuts  int
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go p.accept()
	return p
}

func (p *tcpProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *tcpProxy) accept() {
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

// blip loses what the server sends for d (deliveries to the clients'
// waiting fetches among it), then cuts every connection. It reports
// whether there was a connection to break.
func (p *tcpProxy) blip(d time.Duration) bool {
	p.drop.Store(true)
	time.Sleep(d) // the fault's duration, not a synchronisation
	n := p.cut()
	p.drop.Store(false)
	return n > 0
}

// cut closes every proxied connection and reports how many client
// connections it broke.
func (p *tcpProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	if n > 0 {
		p.cuts++
	}
	return n
}
