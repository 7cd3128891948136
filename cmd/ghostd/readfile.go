package main

// Reading the config file for a load. A large file is read into an
// anonymous memory mapping rather than the Go heap, so that the compile
// can hand its pages back to the OS as it goes (route.Options.Release)
// and ghostd does not hold the file and the new table at once: the file
// is a sixth of a large reload's peak (docs/operations.md, "Reloads").

import (
	"crypto/sha256"
	"io"
	"os"
	"syscall"
)

// mapMin is the size from which a regular file is read into a mapping (a
// variable for the tests). A smaller one is read into the heap: its
// pages matter little, and a mapping costs two system calls.
var mapMin int64 = 1 << 20

// configData is the content of the config file as one load read it.
type configData struct {
	data []byte
	hash [sha256.Size]byte // of data as read, once hashed is closed (sum)
	// hashed, when not nil, is closed when a goroutine has hashed a
	// mapped file (readConfig), which the first sum, the first release
	// and free wait for
	hashed chan struct{}
	// mem is the anonymous mapping data lies in (nil: data is on the
	// heap). Its pages are dropped as the compile goes (release): data
	// is then no longer the file's content.
	mem []byte
	id  fileID
}

// fileID tells whether the file read is still the one a load read.
type fileID struct {
	dev, ino    uint64
	size, mtime int64
}

func fileIDOf(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = st.Dev, st.Ino
	}
	return id
}

// readConfig reads the file at path (its errors are os.ReadFile's).
func readConfig(path string) (*configData, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() < mapMin || fi.Size() >= 1<<40 {
		return readHeap(path) // procfs and pipes (size 0) included
	}
	// One byte more than the file: a file that grew meanwhile fills it,
	// and is then read the usual way.
	mem, err := syscall.Mmap(-1, 0, int(fi.Size())+1, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return readHeap(path)
	}
	n := 0
	for n < len(mem) {
		m, err := f.Read(mem[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = syscall.Munmap(mem)
			return nil, err
		}
	}
	if n == len(mem) {
		_ = syscall.Munmap(mem)
		return readHeap(path)
	}
	c := &configData{data: mem[:n], mem: mem, id: fileIDOf(fi), hashed: make(chan struct{})}
	go func() { // while the compile scans the file (route.Options.Start)
		c.hash = sha256.Sum256(c.data)
		close(c.hashed)
	}()
	return c, nil
}

// sum returns the SHA-256 of the file as read.
func (c *configData) sum() [sha256.Size]byte {
	if c.hashed != nil {
		<-c.hashed
	}
	return c.hash
}

// readHeap reads the file at path into the heap.
func readHeap(path string) (*configData, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &configData{data: data}
	c.hash = sha256.Sum256(data)
	if fi, err := os.Stat(path); err == nil {
		c.id = fileIDOf(fi)
	}
	return c, nil
}

// releaser returns what route.Options.Release is given: nil for data on
// the heap, else the function that drops the whole pages of data[lo:hi]
// (they read as zeros afterwards).
func (c *configData) releaser() func(lo, hi int) {
	if c.mem == nil {
		return nil
	}
	page := os.Getpagesize()
	return func(lo, hi int) {
		<-c.hashed // not before the hash is made
		lo = (lo + page - 1) / page * page
		hi = hi / page * page
		if lo < hi {
			_ = syscall.Madvise(c.mem[lo:hi], syscall.MADV_DONTNEED)
		}
	}
}

// free drops the content (a mapping is unmapped: nothing may hold a
// slice of it); hash and id stay.
func (c *configData) free() {
	if c.mem != nil {
		c.sum() // not while it is hashed
		_ = syscall.Munmap(c.mem)
	}
	*c = configData{hash: c.hash, id: c.id}
}
