// Package protocoltest holds the fixtures that the protocol and ghostd
// benchmarks share, so that their figures measure the same table and the
// same request.
package protocoltest

import (
	"fmt"
	"strings"

	"github.com/varnish/ghost/route"
)

// Config is the benchmark table: 100 vhosts x 10 PathPrefix routes (no
// regex), two weighted backends and request/response header filters per
// route.
func Config() []byte {
	var b strings.Builder
	b.WriteString(`{"version":2,"vhosts":{`)
	for v := 0; v < 100; v++ {
		if v > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"v%d.example.com":{"routes":[`, v)
		for r := 0; r < 10; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"path_match":{"type":"PathPrefix","value":"/p%d"},"backends":[{"address":"10.0.%d.%d","port":8080,"weight":90},{"address":"10.1.%d.%d","port":8080,"weight":10}],`+
				`"filters":{"request_header_modifier":{"set":[{"name":"x-route","value":"r%d"}],"remove":["x-debug"]},"response_header_modifier":{"add":[{"name":"x-served-by","value":"ghost"}]}}}`,
				r, v, r, v, r, r)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}

// Request is a realistic request: 11 headers including a 150-byte
// Cookie and a 110-byte User-Agent (about 755 bytes framed).
func Request() *route.Request {
	return &route.Request{
		Host: "v42.example.com", Method: "GET", URL: "/p7/products/12345?color=blue&size=m",
		Headers: []route.Header{
			{Name: "Host", Value: "v42.example.com"},
			{Name: "User-Agent", Value: strings.Repeat("Mozilla/5.0 (X11; Linux x86_64) ", 3) + "Gecko/20100101 Fx/1"},
			{Name: "Accept", Value: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
			{Name: "Accept-Language", Value: "en-US,en;q=0.5"},
			{Name: "Accept-Encoding", Value: "gzip, deflate, br"},
			{Name: "Cookie", Value: strings.Repeat("session=0123456789abcdef; ", 5) + "theme=dark; lang=en-US-x"},
			{Name: "Referer", Value: "https://v42.example.com/p7/products"},
			{Name: "X-Forwarded-For", Value: "203.0.113.7"},
			{Name: "X-Request-Id", Value: "5f0c1e2d-3b4a-4c5d-8e9f-0a1b2c3d4e5f"},
			{Name: "Cache-Control", Value: "no-cache"},
			{Name: "Connection", Value: "keep-alive"},
		},
		Socket: "http-80",
	}
}
