package route

import (
	"encoding/json"
	"reflect"
	"testing"

	gojson "github.com/goccy/go-json"
)

// FuzzDecodeSameAsStdlib holds decodeFile's fast decoder to encoding/json:
// a document goccy/go-json accepts must decode to the same value under
// encoding/json, so the faster decoder never changes what a file means.
func FuzzDecodeSameAsStdlib(f *testing.F) {
	for _, s := range []string{
		`{"version":2}`,
		`{"version":2,"vhosts":{"a":{"routes":[{"backends":[{"address":"10.0.0.1","port":80,"weight":5}]}]}}}`,
		`{"version":2,"vhosts":{"*.x":{"routes":[{"path_match":{"type":"PathPrefix","value":"/a"},"method":"GET",` +
			`"headers":[{"name":"x","value":"y","type":"RegularExpression"}],"filters":{"request_redirect":{"status_code":301}},` +
			`"backend_groups":[{"weight":1,"backends":[{"address":"::1","port":1}]}],"priority":3,"rule_index":-1}],` +
			`"default_backends":null}}}`,
		`{"VERSION":2,"Vhosts":{}}`,
		`{"version":2.0}`,
		`{"version":2,"vhosts":{"a":{"routes":[{"priority":1e3}]}}}`,
		"{\"version\":2,\"vhosts\":{\"\xff\":{}}}",
		`{"version":2,"version":3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, std fileJSON
		if gojson.Unmarshal(data, &fast) != nil {
			return // decodeFile falls back to encoding/json
		}
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("goccy/go-json accepted what encoding/json rejects (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("decoders disagree on %q:\nfast %+v\nstd  %+v", data, fast, std)
		}
	})
}
