package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
)

// minSecret is the shortest -session-secret accepted.
const minSecret = 16

// sessionSecret reads the key of the session persistence tokens from
// path (surrounding white space dropped), or makes a random one when
// path is "".
func sessionSecret(path string) ([]byte, error) {
	if path == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("making a session secret: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-session-secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < minSecret {
		return nil, fmt.Errorf("-session-secret %s: %d bytes, want at least %d", path, len(b), minSecret)
	}
	return b, nil
}
