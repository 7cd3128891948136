package protocol

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"

	"github.com/varnish/ghost/route"
)

// FuzzDecodeRequest feeds arbitrary bytes through the server's frame
// reader and request decoder. Nothing may panic; a route request that
// decodes must survive an encode/decode round trip unchanged. The seed
// corpus is in testdata/fuzz/FuzzDecodeRequest.
func FuzzDecodeRequest(f *testing.F) {
	e := newEncoder()
	add := func(b []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte(nil), b...))
	}
	add(e.Hello(Version, "vmod-ghost 0.1"))
	add(e.Simple(TypeStatus))
	add(e.LiveRequest([]route.Endpoint{{Address: "10.0.0.1", Port: 8080}, {Address: "::1", Port: 9000}}))
	add(e.RouteRequest(&route.Request{Host: "api.example.com:8080", Method: "GET", URL: "/api/x?y=1",
		Headers: []route.Header{{Name: "X-Env", Value: "canary"}, {Name: "Cookie", Value: "a=b"}},
		Socket:  "http-80", HTTPS: true}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 3, 0x92, 0x01, 0x02})

	dec := newRequestDecoder()
	var req, again request
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			body, err := ReadFrame(br, nil)
			if err != nil {
				return
			}
			if err := dec.Decode(body, &req); err != nil {
				continue
			}
			if req.Type != TypeRoute {
				continue
			}
			frame, err := newEncoder().RouteRequest(&req.Route)
			if err != nil {
				// A decoded request always fits: it came from a frame.
				t.Fatalf("re-encoding: %v", err)
			}
			if err := newRequestDecoder().Decode(frame[4:], &again); err != nil {
				t.Fatalf("decoding the re-encoded request: %v", err)
			}
			if !equalRequest(&req.Route, &again.Route) {
				t.Fatalf("round trip changed the request:\n%+v\n%+v", req.Route, again.Route)
			}
		}
	})
}

func equalRequest(a, b *route.Request) bool {
	if len(a.Headers) == 0 && len(b.Headers) == 0 {
		a2, b2 := *a, *b
		a2.Headers, b2.Headers = nil, nil
		return reflect.DeepEqual(a2, b2)
	}
	return reflect.DeepEqual(a, b)
}
