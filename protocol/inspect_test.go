package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/varnish/ghost/route"
)

// inspectHandler is a stubHandler that can also describe its table.
type inspectHandler struct {
	stubHandler
	doc []byte
}

func (h *inspectHandler) Dump() (uint64, []byte) { return h.gen.Load(), h.doc }
func (h *inspectHandler) Explain(r *route.Request) (uint64, []byte) {
	return h.gen.Load(), fmt.Appendf(nil, `{"host":%q,"url":%q,"method":%q,"headers":%d}`, r.Host, r.URL, r.Method, len(r.Headers))
}

func TestDumpSpansFrames(t *testing.T) {
	// Larger than MaxFrame: the answer must come in several frames.
	doc := bytes.Repeat([]byte("0123456789abcdef"), (MaxFrame+dumpChunk)/16+7)
	h := &inspectHandler{doc: doc}
	h.gen.Store(42)
	sock, _ := startServer(t, h, nil)
	c, err := Dial(sock, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gen, got, err := c.Dump()
	if err != nil || gen != 42 || !bytes.Equal(got, doc) {
		t.Fatalf("Dump: gen %d, %d bytes (want %d), err %v", gen, len(got), len(doc), err)
	}
	gen, got, err = c.Explain(&route.Request{Host: "a.com", Method: "GET", URL: "/x?y", Headers: []route.Header{{Name: "a", Value: "b"}}})
	if want := `{"host":"a.com","url":"/x?y","method":"GET","headers":1}`; err != nil || gen != 42 || string(got) != want {
		t.Fatalf("Explain: gen %d %s %v, want %s", gen, got, err, want)
	}
	// The connection is still in step for ordinary requests.
	if st, err := c.Status(); err != nil || st.Gen != 42 {
		t.Fatalf("Status after dump: %+v %v", st, err)
	}
}

func TestDumpUnsupportedKeepsConnection(t *testing.T) {
	sock, _ := startServer(t, &stubHandler{}, nil)
	c, err := Dial(sock, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Dump()
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeType || pe.Msg != `request type "dump" is not supported by this server` {
		t.Fatalf("Dump on a plain handler: %v", err)
	}
	if _, err := c.Status(); err != nil {
		t.Fatalf("Status after the type error: %v", err)
	}
}
