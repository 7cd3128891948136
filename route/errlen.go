package route

import (
	"errors"
	"fmt"
)

// MaxErrorLen bounds a validation error message, in bytes. Messages quote
// what the file holds (keys, values, numbers as written), and a reload
// error travels to varnishd in a frame and a response header
// (x-ghost-error): a 100,000-digit "version" must not make that answer
// too large to deliver.
const MaxErrorLen = 1024

// clipError shortens err's message to MaxErrorLen bytes: the start (which
// says where) and the end (which says what is wrong) are kept, the middle
// is replaced by a note of how much was left out.
func clipError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if len(msg) <= MaxErrorLen {
		return err
	}
	const tail = 256
	cut := len(msg) - tail
	head := MaxErrorLen - tail - 40 // room for the note
	note := fmt.Sprintf(" …[%d bytes]… ", cut-head)
	return errors.New(validUTF8Prefix(msg[:head]) + note + validUTF8Suffix(msg[cut:]))
}

// validUTF8Prefix drops a partial UTF-8 sequence at the end of s.
func validUTF8Prefix(s string) string {
	for i := len(s) - 1; i >= 0 && i >= len(s)-4; i-- {
		if c := s[i]; c < 0x80 {
			return s
		} else if c >= 0xc0 {
			n := 2
			if c >= 0xf0 {
				n = 4
			} else if c >= 0xe0 {
				n = 3
			}
			if len(s)-i < n {
				return s[:i]
			}
			return s
		}
	}
	return s
}

// validUTF8Suffix drops continuation bytes at the start of s.
func validUTF8Suffix(s string) string {
	for i := 0; i < len(s) && i < 4; i++ {
		if s[i]&0xc0 != 0x80 {
			return s[i:]
		}
	}
	return s
}
