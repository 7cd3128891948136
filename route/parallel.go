package route

// Compiling the vhosts of a streamed document (parseStream) on several
// cores. A vhost's compiled form depends only on its key, its value and
// the session secret, so vhosts can be compiled in any order by several
// builders and the table is the one a serial compile in key order builds;
// the errors are chosen as the serial compile would (see compileMembers).

import (
	"crypto/sha256"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// parallelMin is the number of vhosts from which compileMembers compiles
// on several goroutines (a variable for the tests).
var parallelMin = 64

// parallelWorkers is the number of goroutines compileMembers uses from
// parallelMin vhosts; 0 means GOMAXPROCS (a variable for the tests).
var parallelWorkers = 0

// parallelReverse makes the workers take the batches last first, so that
// the tests see errors found out of key order (a variable for the tests).
var parallelReverse = false

// parallelBatch is how many vhosts (in key order) a worker takes at a
// time. Between batches a worker yields (runtime.Gosched), so that while
// a large table compiles on every core the goroutines answering route
// requests wait about one batch (~1 ms) for a core, not a scheduler time
// slice.
const parallelBatch = 64

// compileMembers decodes and compiles the vhosts (in document order),
// and returns what decodeFile and compile would: streamInvalid when any
// vhost does not decode (also after one that fails to compile), else the
// first error in key order (an invalid or repeated key, or a vhost that
// fails to compile), else the table.
//
// The keys are checked first, in key order. The vhosts of valid keys are
// then compiled by workers that take batches of vhosts in document order
// (so that a batch is one stretch of the document, which Options.Release
// can be given), each with its own builder (endpoint interning, probes,
// rings); table merges the builders. A worker skips the compile of
// vhosts past the first error in key order found so far but still
// decodes them. A vhost whose value is the one the previous table's vhost
// of that key was compiled from is adopted rather than compiled
// (reuse.go).
func compileMembers(name string, data []byte, vhosts []member, o *Options) (*Table, streamResult, error) {
	n := len(vhosts)
	order := make([]int32, n) // key order → document order
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(vhosts[a].key, vhosts[b].key) })
	keys := make([]string, n)
	rank := make([]int32, n) // document order → key order
	for k, i := range order {
		keys[k] = vhosts[i].key
		rank[i] = int32(k)
		if k > 0 && keys[k] == keys[k-1] {
			return nil, streamShape, nil // the last one counts: left to decodeFile
		}
	}
	set, keyErr := newVhostSet(name, keys, o)
	nb := (n + parallelBatch - 1) / parallelBatch
	j := &compileJob{name: name, data: data, vhosts: vhosts, rank: rank, set: set, prevs: adoptable(o, keys),
		release: o.Release}
	if j.release != nil {
		j.done = make([]atomic.Bool, nb)
	}
	j.limit.Store(int64(len(set.vhosts))) // vhosts from limit on (in key order) are decoded only
	workers := 1
	if n >= parallelMin {
		workers = parallelWorkers
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		workers = min(workers, nb)
	}
	set.more = make([]*builder, workers)
	errs := make([]indexedErr, workers)
	var wg sync.WaitGroup
	for w := range workers {
		b := newBuilder(set.opts)
		set.more[w] = &b
		if w == workers-1 {
			errs[w] = j.run(&b) // this goroutine is the last worker
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = j.run(&b)
		}()
	}
	wg.Wait()
	if j.invalid.Load() {
		return nil, streamInvalid, nil
	}
	first := indexedErr{i: n, err: keyErr} // a key error is at len(set.vhosts)
	for _, e := range errs {
		if e.err != nil && e.i < first.i {
			first = e
		}
	}
	if first.err != nil {
		return nil, streamDone, first.err
	}
	return set.table(), streamDone, nil
}

// compileJob is the work of compileMembers' workers.
type compileJob struct {
	name   string
	data   []byte
	vhosts []member // in document order
	rank   []int32  // the key order index of each of vhosts
	set    *vhostSet
	prevs  []*vhost // when not nil: the previous table's vhost of each key (in key order), or nil

	release func(lo, hi int) // Options.Release
	done    []atomic.Bool    // with release: the batches done

	next    atomic.Int64 // the next batch to take
	limit   atomic.Int64 // vhosts from here on are not compiled: the first error so far, or the first bad key
	invalid atomic.Bool  // a vhost does not decode
}

// indexedErr is a vhost's compile error and the vhost's index in key order.
type indexedErr struct {
	i   int
	err error
}

// run is one worker: it decodes and compiles (or adopts) batches of
// vhosts with b until none is left, and returns its first error (its
// index in key order).
func (j *compileJob) run(b *builder) indexedErr {
	var vj vhostJSON
	var dec vhostDecoder
	first := indexedErr{i: len(j.vhosts)}
	n := int64(len(j.vhosts))
	nb := (n + parallelBatch - 1) / parallelBatch
	for !j.invalid.Load() {
		k := j.next.Add(1) - 1
		if k >= nb {
			break
		}
		if parallelReverse {
			k = nb - 1 - k
		}
		lo := k * parallelBatch
		for f := lo; f < min(lo+parallelBatch, n); f++ {
			m := j.vhosts[f]
			i := int64(j.rank[f])
			raw := j.data[m.lo:m.hi]
			src := sha256.Sum256(raw)
			if j.prevs != nil && j.prevs[i] != nil && j.prevs[i].src == src {
				// decoded and compiled before, without an error
				if i < j.limit.Load() {
					b.adopt(j.set.vhosts[i], j.prevs[i], j.set.opts.Prev)
				}
				continue
			}
			known, err := dec.decode(raw, &vj)
			if err != nil {
				j.invalid.Store(true)
				return first
			}
			if i >= j.limit.Load() {
				continue
			}
			vh := j.set.vhosts[i]
			if err := b.compileVhost(j.name, vh, &vj); err != nil {
				first = indexedErr{i: int(i), err: err}
				for l := j.limit.Load(); i < l && !j.limit.CompareAndSwap(l, i); l = j.limit.Load() {
				}
				continue
			}
			vh.src, vh.known = src, known
		}
		if j.release != nil {
			j.releaseBatch(k)
		}
		runtime.Gosched()
	}
	return first
}

// releaseBatch passes the stretch of the document batch k spans to
// Options.Release, with the stretches of the batches next to it that are
// done too: the caller frees whole pages, and so the page where two
// batches meet once both are done.
//
// Batch k spans from its first vhost's value to the next batch's first
// vhost's value (the last batch to its last vhost's end): the keys were
// read before the compile.
func (j *compileJob) releaseBatch(k int64) {
	span := func(k int64) (lo, hi int) {
		lo = j.vhosts[k*parallelBatch].lo
		if next := (k + 1) * parallelBatch; next < int64(len(j.vhosts)) {
			return lo, j.vhosts[next].lo
		}
		return lo, j.vhosts[len(j.vhosts)-1].hi
	}
	j.done[k].Store(true)
	lo, hi := span(k)
	if k > 0 && j.done[k-1].Load() {
		lo, _ = span(k - 1)
	}
	if k+1 < int64(len(j.done)) && j.done[k+1].Load() {
		_, hi = span(k + 1)
	}
	j.release(lo, hi)
}
