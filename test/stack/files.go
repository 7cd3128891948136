package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Root returns the repository root: the nearest directory at or above the
// working directory that holds go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// StageDir creates a directory under /tmp that varnishd's child (user
// vcache) can traverse and read: the VMOD, the VCL and ghostd's socket
// live in it.
func StageDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// CopyFile copies src to dst (like io.Copy: destination first) with the
// given mode.
func CopyFile(dst, src string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// ReplaceFile writes data to a temporary name next to path and renames it
// into place, so that a watcher never reads a half-written file.
func ReplaceFile(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// NeedBuild returns an error naming the build outputs missing under root.
func NeedBuild(root string, files ...string) error {
	var missing []string
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %v: run `make build` first (make test does)", missing)
	}
	return nil
}
