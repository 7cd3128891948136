package stack

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// CLI is one connection to varnishd's management CLI (its -T address,
// authenticated with its -S secret), kept open so that timing a command
// measures varnishd, not the start of a varnishadm process.
type CLI struct {
	conn net.Conn
	r    *bufio.Reader
}

// DialCLI connects to v's CLI and authenticates.
func (v *Varnishd) DialCLI(timeout time.Duration) (*CLI, error) {
	secret, err := os.ReadFile(v.Secret)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", v.Admin, timeout)
	if err != nil {
		return nil, err
	}
	c := &CLI{conn: conn, r: bufio.NewReader(conn)}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	st, body, err := c.read()
	if err == nil && st == 107 {
		// Varnish's CLI authentication: SHA-256 of the challenge, a
		// newline, the secret file, the challenge and a newline.
		ch, _, _ := strings.Cut(body, "\n")
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s%s\n", ch, secret, ch)
		if _, err = fmt.Fprintf(conn, "auth %s\n", hex.EncodeToString(h.Sum(nil))); err == nil {
			st, body, err = c.read()
		}
	}
	if err == nil && st != 200 {
		err = fmt.Errorf("CLI %s: status %d: %.200s", v.Admin, st, body)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// read reads one answer: "SSS LLLLLLLL\n", L bytes of body, "\n".
func (c *CLI) read() (int, string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, "", err
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, "", fmt.Errorf("CLI: bad status line %q", line)
	}
	st, err1 := strconv.Atoi(f[0])
	n, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || n < 0 {
		return 0, "", fmt.Errorf("CLI: bad status line %q", line)
	}
	b := make([]byte, n+1)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return 0, "", err
	}
	return st, string(b[:n]), nil
}

// Do sends one command (its words quoted as varnishadm would not need
// for the commands the suites send: no blanks inside a word) and returns
// the status and body of the answer, waiting at most timeout.
func (c *CLI) Do(timeout time.Duration, words ...string) (int, string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c.conn, "%s\n", strings.Join(words, " ")); err != nil {
		return 0, "", err
	}
	return c.read()
}

// Close closes the connection.
func (c *CLI) Close() error { return c.conn.Close() }
