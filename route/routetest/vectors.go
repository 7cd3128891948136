package routetest

import (
	"bytes"
	"os"
	"testing"
)

// VectorFile checks that the vector file at path (read by the shim's C
// tests, test/cshim/) holds want, what the Go side computes today;
// GHOST_UPDATE_VECTORS=1 writes it first. pkg, what and test name the
// package, the function and the test for the message that says how to
// regenerate it.
func VectorFile(t *testing.T, path string, want []byte, pkg, what, test string) {
	t.Helper()
	if os.Getenv("GHOST_UPDATE_VECTORS") != "" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (GHOST_UPDATE_VECTORS=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what %s computes: regenerate it with GHOST_UPDATE_VECTORS=1 go test %s -run %s", path, what, pkg, test)
	}
}
