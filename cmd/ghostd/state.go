package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// State file layout (docs/protocol.md): 64 bytes, little-endian, every
// field written with an atomic aligned 8-byte store.
const (
	stateSize     = 64
	stateMagic    = "GHOSTST1"
	offMagic      = 0
	offGen        = 8
	offHeartbeat  = 16
	offPid        = 24
	offIdent      = 32 // identity of the live table (tableIdent), 0 = none
	offOriginGen  = 40 // gen again when its table decides only "origin", else 0
	offFetchGen   = 48 // gen again when its table reads no header a fetch rewrites, else 0
	stateFileMode = 0o644
)

// stateFile is ghostd's memory-mapped state file. It is opened in place and
// never replaced, so readers' mappings stay valid across restarts.
type stateFile struct {
	path string
	f    *os.File
	mem  []byte
	// What the previous ghostd left (valid magic only): its generation
	// and the identity of its table, so that a restart with the same
	// binary and configuration keeps the generation.
	prevGen, prevIdent uint64
}

// openState opens (creating it if needed) and maps the state file, and
// writes the magic and our pid. gen and heartbeat are left alone until the
// first table is live.
func openState(path string) (*stateFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, stateFileMode)
	if err != nil {
		return nil, fmt.Errorf("opening state file: %w", err)
	}
	fail := func(what string, err error) (*stateFile, error) {
		f.Close()
		return nil, fmt.Errorf("state file %s: %s: %w", path, what, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail("stat", err)
	}
	if !fi.Mode().IsRegular() {
		return fail("check", fmt.Errorf("not a regular file (%s)", fi.Mode()))
	}
	if fi.Size() < stateSize {
		if err := f.Truncate(stateSize); err != nil {
			return fail("truncate", err)
		}
	}
	if err := f.Chmod(stateFileMode); err != nil {
		return fail("chmod", err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, stateSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	s := &stateFile{path: path, f: f, mem: mem}
	if string(mem[offMagic:offMagic+8]) == stateMagic {
		s.prevGen = s.load(offGen)
		s.prevIdent = s.load(offIdent)
	}
	s.store(offMagic, binary.LittleEndian.Uint64([]byte(stateMagic)))
	s.store(offPid, uint64(os.Getpid()))
	return s, nil
}

// store writes v little-endian at off with one atomic aligned store.
func (s *stateFile) store(off int, v uint64) {
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], v)
	p := (*uint64)(unsafe.Pointer(&s.mem[off]))
	atomic.StoreUint64(p, binary.NativeEndian.Uint64(le[:]))
}

// load reads the little-endian value at off with one atomic aligned load.
func (s *stateFile) load(off int) uint64 {
	v := atomic.LoadUint64((*uint64)(unsafe.Pointer(&s.mem[off])))
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], v)
	return binary.LittleEndian.Uint64(b[:])
}

// SetGen publishes the generation of the table that is now live, the
// table's identity (tableIdent; 0 for a table not loaded from the file),
// whether every decision of that table has the cache mode origin
// (route.Table.CacheOriginOnly): origin_gen is gen then, else 0, and
// whether no decision reads a request header varnishd rewrites on a fetch
// (route.Table.FetchPlain): fetch_gen is gen then, else 0. A reader
// trusts origin_gen and fetch_gen only when they equal the gen it read,
// so the order of the stores does not matter: each only ever holds the
// generation of a table it is true for.
func (s *stateFile) SetGen(gen, ident uint64, originOnly, fetchPlain bool) {
	s.store(offIdent, ident)
	og, fg := uint64(0), uint64(0)
	if originOnly {
		og = gen
	}
	if fetchPlain {
		fg = gen
	}
	s.store(offOriginGen, og)
	s.store(offFetchGen, fg)
	s.store(offGen, gen)
}

// Heartbeat publishes a Unix time in milliseconds (0 = ghostd stopped).
func (s *stateFile) Heartbeat(ms int64) { s.store(offHeartbeat, uint64(ms)) }

// Close unmaps and closes the file; the file itself stays.
func (s *stateFile) Close() error {
	err := syscall.Munmap(s.mem)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("closing state file %s: %w", s.path, err)
	}
	return nil
}
