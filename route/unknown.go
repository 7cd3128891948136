package route

import (
	"bytes"
	"encoding/json"
	"sort"
)

// schemaNode describes the keys Parse reads from one JSON object. A nil
// child means a scalar (or a value whose inside is not checked).
type schemaNode struct {
	fields map[string]*schemaNode // object: known keys
	elem   *schemaNode            // list: element schema; map: value schema
	isMap  bool                   // object with arbitrary keys (vhosts)
	any    bool                   // anything goes (top-level "default")
}

func obj(fields map[string]*schemaNode) *schemaNode { return &schemaNode{fields: fields} }
func list(elem *schemaNode) *schemaNode             { return &schemaNode{elem: elem} }

var schema = func() *schemaNode {
	endpoint := obj(map[string]*schemaNode{"address": nil, "port": nil, "weight": nil})
	group := obj(map[string]*schemaNode{"weight": nil, "backends": list(endpoint)})
	either := obj(map[string]*schemaNode{"address": nil, "port": nil, "weight": nil, "backends": list(endpoint)})
	match := obj(map[string]*schemaNode{"name": nil, "value": nil, "type": nil})
	kv := obj(map[string]*schemaNode{"name": nil, "value": nil})
	hm := obj(map[string]*schemaNode{"set": list(kv), "add": list(kv), "remove": list(nil)})
	route := obj(map[string]*schemaNode{
		"path_match":   obj(map[string]*schemaNode{"type": nil, "value": nil}),
		"method":       nil,
		"headers":      list(match),
		"query_params": list(match),
		"filters": obj(map[string]*schemaNode{
			"request_header_modifier":  hm,
			"response_header_modifier": hm,
			"url_rewrite":              obj(map[string]*schemaNode{"hostname": nil, "path_type": nil, "replace_full_path": nil, "replace_prefix_match": nil}),
			"request_redirect": obj(map[string]*schemaNode{"scheme": nil, "hostname": nil, "port": nil, "path_type": nil,
				"replace_full_path": nil, "replace_prefix_match": nil, "status_code": nil}),
		}),
		"backends":       list(endpoint),
		"backend_groups": list(group),
		"priority":       nil,
		"rule_index":     nil,
		"listeners":      list(nil),
		"route_name":     nil,
	})
	vhost := obj(map[string]*schemaNode{"routes": list(route), "default_backends": list(either)})
	return obj(map[string]*schemaNode{
		"version": nil,
		"vhosts":  {isMap: true, elem: vhost},
		"default": {any: true},
	})
}()

// UnknownKeys lists the object keys of a ghost.json document that Parse
// ignores, as distinct sorted paths such as "vhosts.*.routes[].timeout".
// ghostd may log them (once, at debug level). It returns nil for a
// document that is not valid JSON; Parse reports that.
func UnknownKeys(data []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	found := map[string]bool{}
	if walkUnknown(dec, schema, "", found) != nil {
		return nil
	}
	out := make([]string, 0, len(found))
	for k := range found {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// walkUnknown reads one value from dec and records unknown keys under it.
func walkUnknown(dec *json.Decoder, n *schemaNode, path string, found map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		var elem *schemaNode
		if n != nil && !n.any {
			elem = n.elem
		}
		for dec.More() {
			if err := walkUnknown(dec, elem, path+"[]", found); err != nil {
				return err
			}
		}
	case '{':
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			var child *schemaNode
			sub := path
			if sub != "" {
				sub += "."
			}
			switch {
			case n == nil || n.any:
			case n.isMap:
				child, sub = n.elem, sub+"*"
			default:
				c, known := n.fields[k]
				if !known {
					found[sub+k] = true
				}
				child, sub = c, sub+k
			}
			if err := walkUnknown(dec, child, sub, found); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
