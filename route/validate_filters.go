package route

// Validation and compilation of a route's filters: header modifiers,
// url_rewrite, request_redirect and cors (docs/routing.md, "Filters").

import "fmt"

// filters validates and compiles a route's filters into r.
func (r *croute) filters(fj *filtersJSON) error {
	var err error
	if r.reqOps, err = headerOps("filters.request_header_modifier", fj.RequestHeaderModifier); err != nil {
		return err
	}
	if r.respOps, err = headerOps("filters.response_header_modifier", fj.ResponseHeaderModifier); err != nil {
		return err
	}
	if u := fj.URLRewrite; u != nil {
		const field = "filters.url_rewrite"
		rw := &urlRewrite{}
		if u.Hostname != nil {
			if why := checkHostname(*u.Hostname); why != "" {
				return fmt.Errorf("%s.hostname %q %s", field, *u.Hostname, why)
			}
			rw.hostname = *u.Hostname
		}
		if rw.mod, rw.value, err = r.pathMod(field, u.PathType, u.ReplaceFullPath, u.ReplacePrefixMatch); err != nil {
			return err
		}
		if rw.hostname != "" || rw.mod != modNone {
			r.rewrite = rw
		}
	}
	if rd := fj.RequestRedirect; rd != nil {
		const field = "filters.request_redirect"
		x := &redirect{status: DefaultRedirect}
		if rd.Scheme != nil {
			if *rd.Scheme != "http" && *rd.Scheme != "https" {
				return fmt.Errorf("%s.scheme %q must be http or https", field, *rd.Scheme)
			}
			x.scheme = *rd.Scheme
		}
		if rd.Hostname != nil {
			if why := checkHostname(*rd.Hostname); why != "" {
				return fmt.Errorf("%s.hostname %q %s", field, *rd.Hostname, why)
			}
			x.hostname = *rd.Hostname
		}
		if rd.Port != nil {
			if *rd.Port < 1 || *rd.Port > 65535 {
				return fmt.Errorf("%s.port %d out of range 1-65535", field, *rd.Port)
			}
			x.port = int(*rd.Port)
		}
		if rd.StatusCode != nil {
			switch *rd.StatusCode {
			case 301, 302, 303, 307, 308:
				x.status = int(*rd.StatusCode)
			default:
				return fmt.Errorf("%s.status_code %d must be 301, 302, 303, 307 or 308", field, *rd.StatusCode)
			}
		}
		if x.mod, x.value, err = r.pathMod(field, rd.PathType, rd.ReplaceFullPath, rd.ReplacePrefixMatch); err != nil {
			return err
		}
		r.redirect = x
	}
	if fj.CORS != nil {
		const field = "filters.cors"
		if r.cors, err = compileCORS(field, fj.CORS); err != nil {
			return err
		}
		// the filter reads the Origin the backend request carries
		if r.reqOps != nil && opsName(r.reqOps, "origin") {
			return fmt.Errorf("filters.request_header_modifier changes Origin, which %s reads: remove one of them", field)
		}
	}
	return nil
}

// pathMod validates a URLRewrite/RequestRedirect path modifier. Without
// path_type, a single replace_* value says which modifier is meant.
func (r *croute) pathMod(field string, typ, full, prefix *string) (pathModKind, string, error) {
	t := ""
	if typ != nil {
		t = *typ
	} else {
		switch {
		case full != nil && prefix != nil:
			return 0, "", fmt.Errorf("%s.path_type is required when both replace_full_path and replace_prefix_match are set", field)
		case full != nil:
			t = "ReplaceFullPath"
		case prefix != nil:
			t = "ReplacePrefixMatch"
		default:
			return modNone, "", nil
		}
	}
	switch t {
	case "ReplaceFullPath":
		if full == nil {
			return 0, "", fmt.Errorf("%s.replace_full_path is required for ReplaceFullPath", field)
		}
		if err := checkPath(field+".replace_full_path", *full, false); err != nil {
			return 0, "", err
		}
		return modFull, *full, nil
	case "ReplacePrefixMatch":
		if prefix == nil {
			return 0, "", fmt.Errorf("%s.replace_prefix_match is required for ReplacePrefixMatch", field)
		}
		if err := checkPath(field+".replace_prefix_match", *prefix, true); err != nil {
			return 0, "", err
		}
		if r.kind != pathPrefix && r.kind != pathAll {
			return 0, "", fmt.Errorf("%s: ReplacePrefixMatch needs a PathPrefix path_match (or none)", field)
		}
		return modPrefix, *prefix, nil
	default:
		return 0, "", fmt.Errorf("%s.path_type %q must be ReplaceFullPath or ReplacePrefixMatch", field, t)
	}
}

// headerOps validates a header modifier; nil when it does nothing.
func headerOps(field string, m *headerModJSON) (*HeaderOps, error) {
	if m == nil {
		return nil, nil
	}
	ops := &HeaderOps{}
	kv := func(what string, list []headerKVJSON) ([]Header, error) {
		var out []Header
		for j, h := range list {
			f := fmt.Sprintf("%s.%s[%d]", field, what, j)
			if h.Name == nil {
				return nil, fmt.Errorf("%s.name is required", f)
			}
			if err := checkHeaderName(f, *h.Name); err != nil {
				return nil, err
			}
			if h.Value == nil {
				return nil, fmt.Errorf("%s.value is required", f)
			}
			if err := checkHeaderValue(f, *h.Value); err != nil {
				return nil, err
			}
			out = append(out, Header{Name: *h.Name, Value: *h.Value})
		}
		return out, nil
	}
	var err error
	if ops.Set, err = kv("set", m.Set); err != nil {
		return nil, err
	}
	if ops.Add, err = kv("add", m.Add); err != nil {
		return nil, err
	}
	for j, n := range m.Remove {
		if err := checkHeaderName(fmt.Sprintf("%s.remove[%d]", field, j), n); err != nil {
			return nil, err
		}
		ops.Remove = append(ops.Remove, n)
	}
	if len(ops.Set) == 0 && len(ops.Add) == 0 && len(ops.Remove) == 0 {
		return nil, nil
	}
	return ops, nil
}
