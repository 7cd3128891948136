package protocol

import (
	"bytes"
	"testing"
	"time"

	"github.com/varnish/ghost/route/ring"
)

// ringHandler serves one ring.
type ringHandler struct {
	stubHandler
	r *ring.Ring
}

func (h *ringHandler) Ring(id uint64) (uint64, *ring.Ring) {
	if id == h.r.ID() {
		return h.gen.Load(), h.r
	}
	return h.gen.Load(), nil
}

// A ring request gets the ring's points as ring.Encode wrote them and
// its number of members, or neither for an ID the table does not have;
// a server whose handler serves no rings answers a "type" error and
// keeps the connection.
func TestRingRequest(t *testing.T) {
	r, err := ring.New([]ring.Member{{ID: "10.0.0.1:80"}, {ID: "10.0.0.2:80", Weight: 0}, {ID: "[::1]:80"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &ringHandler{r: r}
	h.gen.Store(7)
	sock, _ := startServer(t, h, nil)
	c, err := Dial(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.Ring(r.ID())
	if err != nil {
		t.Fatal(err)
	}
	if a.Gen != 7 || a.ID != r.ID() || a.Members != 3 || !bytes.Equal(a.Points, r.Encode()) {
		t.Fatalf("answer gen %d id %d members %d, %d bytes of points", a.Gen, a.ID, a.Members, len(a.Points))
	}
	a, err = c.Ring(r.ID() + 1)
	if err != nil || a.Points != nil || a.Members != 0 || a.ID != r.ID()+1 {
		t.Fatalf("unknown ring: %+v, %v", a, err)
	}

	sock2, _ := startServer(t, &stubHandler{}, nil)
	c2, err := Dial(sock2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Ring(1); err == nil || err.Error() != `ring: request type "ring" is not supported by this server` {
		t.Fatalf("a server without rings: %v", err)
	}
	if _, err := c2.Status(); err != nil {
		t.Fatalf("the connection did not stay open: %v", err)
	}
}
