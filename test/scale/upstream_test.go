package scale

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestUpstream: the upstream answers on several 127.x.y.z addresses and
// names the one a request came to, with and without keep-alive.
func TestUpstream(t *testing.T) {
	for _, ka := range []bool{false, true} {
		u, err := StartUpstream(ka)
		if err != nil {
			t.Skip(err) // SO_BINDTODEVICE needs CAP_NET_RAW
		}
		for _, i := range []int{0, 253, 254, 70000} {
			resp, err := http.Get(fmt.Sprintf("http://%s:%d/", Endpoint(i), u.Port))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := resp.Header.Get("X-Upstream"); got != Endpoint(i).String() {
				t.Errorf("keep-alive %v, endpoint %d: X-Upstream %q, want %v", ka, i, got, Endpoint(i))
			}
			if resp.Close == ka {
				t.Errorf("keep-alive %v: Connection: close is %v", ka, resp.Close)
			}
		}
		u.Close()
	}
}
