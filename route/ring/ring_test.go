package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// keys are the 100k keys the properties are measured over (URL-like).
func keys(n int) []uint64 {
	h := make([]uint64, n)
	for i := range h {
		h[i] = HashString("/product/" + strconv.Itoa(i) + "?v=1")
	}
	return h
}

func members(n int) []Member {
	m := make([]Member, n)
	for i := range m {
		m[i] = Member{ID: fmt.Sprintf("10.0.0.%d:8080", i+1)}
	}
	return m
}

func mustNew(t testing.TB, m []Member) *Ring {
	t.Helper()
	r, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// owners maps each key to the ID of its owner.
func owners(r *Ring, ks []uint64) []string {
	o := make([]string, len(ks))
	for i, k := range ks {
		o[i] = r.Members[r.Lookup(k)].ID
	}
	return o
}

// TestRemap: adding or removing one member of N moves about 1/N of the
// keys (1/(N+1) when adding), and only keys of that member. The
// fractions are printed with -v and recorded in docs/configuration.md.
func TestRemap(t *testing.T) {
	ks := keys(100000)
	for _, n := range []int{3, 5, 10, 20} {
		base := owners(mustNew(t, members(n)), ks)
		// add member n+1
		added := owners(mustNew(t, members(n+1)), ks)
		newID := members(n + 1)[n].ID
		moved := 0
		for i := range ks {
			if added[i] != base[i] {
				moved++
				if added[i] != newID {
					t.Fatalf("N=%d add: key %d moved from %s to %s, not to the new member", n, i, base[i], added[i])
				}
			}
		}
		fa := float64(moved) / float64(len(ks))
		// remove the second member
		m := members(n)
		gone := m[1].ID
		removed := owners(mustNew(t, append(m[:1:1], m[2:]...)), ks)
		moved = 0
		for i := range ks {
			if removed[i] != base[i] {
				moved++
				if base[i] != gone {
					t.Fatalf("N=%d remove: key %d moved from %s, not the removed member", n, i, base[i])
				}
			}
		}
		fr := float64(moved) / float64(len(ks))
		t.Logf("N=%d: add one remaps %.4f (1/(N+1) = %.4f), remove one remaps %.4f (1/N = %.4f)", n, fa, 1/float64(n+1), fr, 1/float64(n))
		if math.Abs(fa-1/float64(n+1)) > 0.35/float64(n+1) || math.Abs(fr-1/float64(n)) > 0.35/float64(n) {
			t.Errorf("N=%d: remap %.4f/%.4f too far from 1/N", n, fa, fr)
		}
	}
}

// TestBalance: with equal weights every member owns about 1/N of the
// keys; the worst member's share is printed and bounded.
func TestBalance(t *testing.T) {
	ks := keys(100000)
	for _, n := range []int{2, 3, 5, 10, 50} {
		r := mustNew(t, members(n))
		cnt := make([]int, n)
		for _, k := range ks {
			cnt[r.Lookup(k)]++
		}
		lo, hi := len(ks), 0
		for _, c := range cnt {
			lo, hi = min(lo, c), max(hi, c)
		}
		fair := float64(len(ks)) / float64(n)
		t.Logf("N=%d: shares from %.3f to %.3f of fair", n, float64(lo)/fair, float64(hi)/fair)
		if float64(hi)/fair > 1.25 || float64(lo)/fair < 0.75 {
			t.Errorf("N=%d: shares %.3f-%.3f of fair", n, float64(lo)/fair, float64(hi)/fair)
		}
	}
}

// TestWeights: a weight-2 member owns about twice the keys of a
// weight-1 member; a group's weight is shared by its endpoints.
func TestWeights(t *testing.T) {
	ks := keys(100000)
	cases := []struct {
		name string
		m    []Member
		want []float64 // expected shares
	}{
		{"1:2", []Member{{ID: "a", Weight: 1}, {ID: "b", Weight: 2}}, []float64{1. / 3, 2. / 3}},
		{"1:1:2", []Member{{ID: "a", Weight: 1}, {ID: "b", Weight: 1}, {ID: "c", Weight: 2}}, []float64{.25, .25, .5}},
		{"90:10", []Member{{ID: "a", Weight: 90}, {ID: "b", Weight: 10}}, []float64{.9, .1}},
		{"group 2 of 2 endpoints vs 1", []Member{{ID: "a", Weight: 2, Share: 2}, {ID: "b", Weight: 2, Share: 2}, {ID: "c", Weight: 1}},
			[]float64{1. / 3, 1. / 3, 1. / 3}},
		{"weight 0 owns nothing", []Member{{ID: "a", Weight: 0}, {ID: "b", Weight: 5}}, []float64{0, 1}},
	}
	for _, c := range cases {
		r := mustNew(t, c.m)
		cnt := make([]int, len(c.m))
		for _, k := range ks {
			cnt[r.Lookup(k)]++
		}
		for i, w := range c.want {
			got := float64(cnt[i]) / float64(len(ks))
			t.Logf("%s: member %s owns %.4f (weight says %.4f)", c.name, c.m[i].ID, got, w)
			if math.Abs(got-w) > 0.15*w+0.001 {
				t.Errorf("%s: member %s owns %.4f, want about %.4f", c.name, c.m[i].ID, got, w)
			}
		}
	}
}

// TestDeterministic: the ring depends on the members' IDs and weights,
// not on their order, and rebuilding it (a reload, another node) gives
// the same owner for every key.
func TestDeterministic(t *testing.T) {
	ks := keys(20000)
	m := members(7)
	m[3].Weight = 3
	for i := range m {
		if m[i].Weight == 0 {
			m[i].Weight = 1
		}
	}
	a := owners(mustNew(t, m), ks)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 5; round++ {
		s := append([]Member(nil), m...)
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		b := owners(mustNew(t, s), ks)
		for i := range ks {
			if a[i] != b[i] {
				t.Fatalf("round %d: key %d owned by %s, by %s after reordering", round, i, a[i], b[i])
			}
		}
	}
	r1, r2 := mustNew(t, m), mustNew(t, m)
	if r1.ID() != r2.ID() {
		t.Fatal("same members, different ring IDs")
	}
	m[0].Weight = 2
	if mustNew(t, m).ID() == r1.ID() {
		t.Fatal("different weights, same ring ID")
	}
}

// TestWalk: the walk skips refused members in ring order, asks each
// member once, and ends with -1 when all are refused; Lookup is the
// walk that accepts everything.
func TestWalk(t *testing.T) {
	r := mustNew(t, members(5))
	ks := keys(5000)
	for _, k := range ks {
		own := r.Lookup(k)
		if got := r.Walk(k, func(int) bool { return true }); got != own {
			t.Fatalf("walk accepting all gives %d, lookup %d", got, own)
		}
		asked := map[int]bool{}
		got := r.Walk(k, func(m int) bool {
			if asked[m] {
				t.Fatalf("member %d asked twice", m)
			}
			asked[m] = true
			return false
		})
		if got != -1 || len(asked) != 5 {
			t.Fatalf("walk refusing all: %d, asked %d members", got, len(asked))
		}
		// down the owner: the key goes where it goes when the owner is
		// removed (the shard director's behaviour: minimal remap).
		alt := r.Walk(k, func(m int) bool { return m != own })
		m := members(5)
		without := mustNew(t, append(m[:own:own], m[own+1:]...))
		if r.Members[alt].ID != without.Members[without.Lookup(k)].ID {
			t.Fatalf("key %x: walk past %s gives %s, removing it gives %s", k, r.Members[own].ID, r.Members[alt].ID, without.Members[without.Lookup(k)].ID)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		m    []Member
		want string
	}{
		{nil, "no member with a positive weight"},
		{[]Member{{ID: "a", Weight: 0}, {ID: "b", Weight: 0, Share: 2}}, ""},
		{[]Member{{ID: ""}}, "member 0: empty ID"},
		{[]Member{{ID: "a"}, {ID: "a"}}, `member 1: duplicate ID "a"`},
		{make([]Member, MaxMembers+1), "4097 members, at most 4096"},
	} {
		_, err := New(c.m)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("New(%d members): %q, want %q", len(c.m), got, c.want)
		}
	}
}

// TestSize: points stay within the budget however many members.
func TestSize(t *testing.T) {
	for _, n := range []int{1, 384, 385, 1000, MaxMembers} {
		r := mustNew(t, members(n))
		if len(r.Points) > 65536 || len(r.Points) < n {
			t.Errorf("%d members: %d points", n, len(r.Points))
		}
	}
	r := mustNew(t, []Member{{ID: "a", Weight: 1}, {ID: "b", Weight: 1000000}})
	if c := r.Points; len(c) > 2*Replicas+1 {
		t.Errorf("1:1000000: %d points", len(c))
	}
}

func BenchmarkNew(b *testing.B) {
	m := members(20)
	for i := 0; i < b.N; i++ {
		mustNew(b, m)
	}
}
