package route

// Validation and compilation of backend lists: endpoints, weights and
// groups of a route's backends/backend_groups and of a vhost's
// default_backends. Endpoint lists are interned so that routes sharing
// their backends share one list.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// endpoint validates one backend entry's address and port. On error it
// returns the message to append to the entry's field name.
func (b *builder) endpoint(address string, portp *int64) ([]Endpoint, string) {
	if address == "" {
		return nil, ".address is required"
	}
	a, err := netip.ParseAddr(address)
	if err != nil || a.Zone() != "" {
		return nil, fmt.Sprintf(": address %q is not an IP literal", address)
	}
	if portp == nil {
		return nil, ".port is required"
	}
	port := *portp
	if port < 1 || port > 65535 {
		return nil, fmt.Sprintf(": port %d out of range 1-65535", port)
	}
	ap := netip.AddrPortFrom(a, uint16(port))
	if s, ok := b.refs[ap]; ok {
		return s, ""
	}
	text := address
	var buf [64]byte
	if t := a.AppendTo(buf[:0]); string(t) != text {
		text = string(t) // canonical form
	}
	s := []Endpoint{{Address: text, Port: uint16(port)}}
	b.refs[ap] = s
	return s, ""
}

// weight validates a weight; absent is DefaultWeight. On error it returns
// the message to append to the field name.
func weight(w *int64) (uint64, string) {
	if w == nil {
		return DefaultWeight, ""
	}
	if *w < 0 || *w > MaxWeight {
		return 0, fmt.Sprintf(": weight %d out of range 0-%d", *w, MaxWeight)
	}
	return uint64(*w), ""
}

// endpointGroups compiles a per-endpoint list: one group per endpoint.
func (b *builder) endpointGroups(field string, list []backendJSON) ([]Group, error) {
	var out []Group
	for j := range list {
		if list[j].Backends != nil {
			return nil, fmt.Errorf("%s: a group entry in a list of endpoints", fieldIndex(field, j))
		}
		ep, bad := b.endpoint(list[j].Address, list[j].Port)
		if bad != "" {
			return nil, errors.New(fieldIndex(field, j) + bad)
		}
		w, bad := weight(list[j].Weight)
		if bad != "" {
			return nil, errors.New(fieldIndex(field, j) + bad)
		}
		if w == 0 {
			b.notePicked(ep)
			continue
		}
		if out == nil {
			out = make([]Group, 0, len(list))
		}
		out = append(out, Group{Weight: w, Endpoints: ep})
	}
	return out, nil
}

// group compiles one weighted group; ok is false when it can never be
// picked (weight 0 or no endpoints) but is valid. field names the group.
func (b *builder) group(field string, w *int64, list []endpointJSON) (Group, bool, error) {
	gw, bad := weight(w)
	if bad != "" {
		return Group{}, false, errors.New(field + bad)
	}
	eps := make([]Endpoint, 0, len(list))
	for j := range list {
		ep, bad := b.endpoint(list[j].Address, list[j].Port)
		if bad == "" {
			_, bad = weight(list[j].Weight)
		}
		if bad != "" {
			return Group{}, false, errors.New(fieldIndex(field+".backends", j) + bad)
		}
		eps = append(eps, ep[0])
	}
	if gw == 0 || len(eps) == 0 {
		b.notePicked(eps)
		return Group{}, false, nil
	}
	return Group{Weight: gw, Endpoints: b.intern(eps)}, true, nil
}

func (b *builder) routeBackends(rj *routeJSON) ([]Group, error) {
	if len(rj.Backends) > 0 && len(rj.BackendGroups) > 0 {
		return nil, fmt.Errorf("backends and backend_groups are both set")
	}
	if len(rj.BackendGroups) == 0 {
		return b.endpointGroups("backends", rj.Backends)
	}
	var out []Group
	for j := range rj.BackendGroups {
		g, ok, err := b.group(fieldIndex("backend_groups", j), rj.BackendGroups[j].Weight, rj.BackendGroups[j].Backends)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// defaultBackends accepts endpoint entries or group entries (not mixed).
// Errors start with the part of the field after "default_backends".
func (b *builder) defaultBackends(list []backendJSON) ([]Group, error) {
	isGroup := list[0].Address == "" && list[0].Backends != nil
	var out []Group
	for j := range list {
		g := list[j].Address == "" && list[j].Backends != nil
		if g != isGroup {
			return nil, fmt.Errorf("[%d]: mixes endpoint entries and group entries", j)
		}
		if !isGroup {
			continue
		}
		if list[j].Port != nil {
			return nil, fmt.Errorf("[%d]: a group entry has no port", j)
		}
		grp, ok, err := b.group(fieldIndex("", j), list[j].Weight, list[j].Backends)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, grp)
		}
	}
	if isGroup {
		return out, nil
	}
	return b.endpointGroups("", list)
}

// notePicked records endpoints of the vhost being compiled that no
// group holds (weight 0): the table references them all the same, and
// so must a table that adopts the vhost (reuse.go).
func (b *builder) notePicked(eps []Endpoint) {
	for _, e := range eps {
		b.unpicked = append(b.unpicked, e)
	}
}

// intern returns a shared copy of an endpoint list.
func (b *builder) intern(eps []Endpoint) []Endpoint {
	if len(eps) == 1 {
		a, _ := netip.ParseAddr(eps[0].Address)
		return b.refs[netip.AddrPortFrom(a, eps[0].Port)]
	}
	k := make([]byte, 0, len(eps)*20)
	for _, e := range eps {
		k = append(k, e.Address...)
		k = append(k, '|')
		k = strconv.AppendUint(k, uint64(e.Port), 10)
		k = append(k, ';')
	}
	if s, ok := b.groupCache[string(k)]; ok {
		return s
	}
	s := slices.Clip(eps)
	b.groupCache[string(k)] = s
	return s
}
