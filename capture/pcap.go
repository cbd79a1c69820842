package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/minerguard/minerguard/internal/prefetch"
)

// pcapMaxFrame is libpcap's largest snaplen: records up to it are read whatever snaplen a
// file declares, like tcpdump and pcapgo do.
const pcapMaxFrame = 262144

// nextPcap reads one classic pcap record for Next, straight out of the read buffer. It is
// used instead of pcapgo's record reader, which reports a file that ends right after a record
// header as a clean end (io.ReadFull's io.EOF for zero bytes read), silently dropping the
// damage.
func (c *File) nextPcap(f *Frame) ([]byte, error) {
	if c.pending > 0 {
		if _, err := c.content.Discard(c.pending); err != nil {
			return nil, err
		}
		c.pending = 0
	}
	h, err := c.content.Peek(16)
	if len(h) == 0 && err == io.EOF {
		return nil, io.EOF
	}
	if len(h) < 16 {
		return nil, io.ErrUnexpectedEOF
	}
	incl, orig := int(c.u32(h[8:12])), int(c.u32(h[12:16]))
	if incl > c.maxCap || incl < 0 {
		return nil, fmt.Errorf("capture length exceeds snap length: %d > %d", incl, c.maxCap)
	}
	if incl > orig {
		return nil, fmt.Errorf("capture length exceeds original packet length: %d > %d", incl, orig)
	}
	rec, err := c.content.Peek(16 + incl)
	if len(rec) < 16+incl {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c.pending = 16 + incl
	c.frame(f, rec[:16+incl:16+incl])
	return f.Data, nil
}

// frame fills f from rec, one whole record (header and data) checked by the caller.
func (c *File) frame(f *Frame, rec []byte) {
	f.Timestamp = unixUTC(int64(c.u32(rec[0:4])), int64(c.u32(rec[4:8]))*c.nanos)
	f.WireLen, f.Interface, f.LinkType = int(c.u32(rec[12:16])), 0, c.link
	f.Data = rec[16:]
}

// u32 reads a record header field in the file's byte order. A branch on a bool, not a call
// through binary.ByteOrder: the interface call is not inlined and cost 4 % of replay, four
// times a record.
func (c *File) u32(b []byte) uint32 {
	if c.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// NextBatch reads up to len(fs) frames into fs and returns how many. Their Data stay valid
// until the next call to Next or NextBatch (each frame's alone would end at the next read),
// so a caller can look ahead at a batch (engine.PacketBatch). After the first frame it only
// takes records already whole in the read buffer: a refill moves the buffer's bytes and would
// invalidate the frames before it. It returns at least one frame, or 0 and Next's error.
func (c *File) NextBatch(fs []Frame) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	if err := c.Next(&fs[0]); err != nil {
		return 0, err
	}
	if c.pcap == nil {
		return 1, nil // pcapng's reader reuses its buffer per record
	}
	// The rest of the batch: records already whole in the read buffer, walked by index in one
	// slice of it (no call into bufio a record); their bytes are discarded at the next call.
	buf, _ := c.content.Peek(c.content.Buffered()) // buffered: no refill
	off, n := c.pending, 1
	for n < len(fs) {
		rec, ok := c.buffered(buf[off:])
		if !ok {
			break
		}
		c.frame(&fs[n], rec)
		off += len(rec)
		n++
	}
	c.good += int64(off - c.pending)
	c.pending = off
	c.packets.Add(int64(n - 1)) // the first was counted by Next
	c.readAhead()
	return n, nil
}

// readAheadBytes is how far past the frames handed out NextBatch prefetches the read buffer:
// a little more than the next batch of mean-sized records.
const readAheadBytes = 16 << 10

// readAhead prefetches the buffered bytes after the last record handed out, up to
// readAheadBytes, skipping what an earlier call prefetched. The kernel's copy into the 1 MiB
// buffer has pushed its start out of the core's L2 by the time the records are read; each
// record header then was a miss the walk waited on (5 % of replay), as it depends on the
// previous record's length and the hardware prefetcher does not follow a sparse walk.
func (c *File) readAhead() {
	avail := c.content.Buffered() - c.pending // bytes from c.good on
	from := max(c.ahead, c.good)
	to := min(c.good+int64(avail), c.good+readAheadBytes)
	if to <= from {
		return
	}
	b, _ := c.content.Peek(c.pending + int(to-c.good)) // buffered: no refill
	prefetch.Bytes(b[c.pending+int(from-c.good):])
	c.ahead = to
}

// buffered returns the record at the start of b if it is whole in b and valid; otherwise
// nothing, leaving the record (and its error) to the next Next.
func (c *File) buffered(b []byte) ([]byte, bool) {
	if len(b) < 16 {
		return nil, false
	}
	incl, orig := int(c.u32(b[8:12])), int(c.u32(b[12:16]))
	if incl > c.maxCap || incl < 0 || incl > orig || len(b) < 16+incl {
		return nil, false
	}
	return b[: 16+incl : 16+incl], true
}

func unixUTC(sec, nsec int64) time.Time { return time.Unix(sec, nsec).UTC() }
