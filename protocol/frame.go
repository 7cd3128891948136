package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrFrameSize is returned (wrapped) when a frame header announces a length
// of zero or more than MaxFrame. The connection must be dropped.
var ErrFrameSize = errors.New("bad frame length")

// frameLen validates a 4-byte big-endian frame header.
func frameLen(hdr []byte) (int, error) {
	n := binary.BigEndian.Uint32(hdr)
	if n == 0 || n > MaxFrame {
		return 0, fmt.Errorf("%w %d (must be 1..%d)", ErrFrameSize, n, MaxFrame)
	}
	return int(n), nil
}

// ReadFrame reads one frame from r and returns its body. The body is read
// into buf when it is large enough, else into a new slice. A zero or too
// large length is rejected before anything of the body is read.
func ReadFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n, err := frameLen(hdr[:])
	if err != nil {
		return nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading %d-byte frame body: %w", n, io.ErrUnexpectedEOF)
	}
	return buf, nil
}

// AppendFrame appends body to dst as one frame (length header, body).
func AppendFrame(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// finishFrame writes the length header of a frame that was built in place
// starting with 4 placeholder bytes.
func finishFrame(b []byte) error {
	n := len(b) - 4
	if n <= 0 || n > MaxFrame {
		return fmt.Errorf("encoding: %w %d", ErrFrameSize, n)
	}
	binary.BigEndian.PutUint32(b[:4], uint32(n))
	return nil
}
