package gateway

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"sync"
	"time"
)

// The send path. A session's frames wait in its queue; one goroutine at a
// time, started when the queue turns non-empty, takes everything queued
// and writes it as WebSocket frames with one write(2): a socket that has
// several frames waiting costs one syscall, not one per frame. The queue
// and the write buffer come from pools and go back once written, so an
// idle connection holds neither. gws still owns the read side, pongs and
// close frames; each of those is one write of its own, and the kernel
// keeps whole writes apart (a net.Conn write is atomic against other
// writes of the same connection), so they never split one of our frames.
//
// Frames are framed here, not by gws: a server frame is a 2 to 10 byte
// header before the payload, and the payload is shared by every session
// it is queued to. On a connection that negotiated permessage-deflate a
// frame of at least deflateThreshold bytes goes out compressed; the
// server never keeps a compression context (server_no_context_takeover),
// so the compressed form depends on the payload alone and a frame queued
// to several sessions is compressed once (sharedFrame).

const (
	// deflateThreshold is the smallest frame sent compressed, as gws was
	// configured (ServerOption.PermessageDeflate.Threshold).
	deflateThreshold = 512
	// batchBytes is where a batch is written before the next frame is
	// added: a larger batch takes more writes.
	batchBytes = 64 << 10
	// maxPooledBuffer bounds the buffers kept in the pools: one very large
	// reply does not pin its buffer.
	maxPooledBuffer = 256 << 10
)

// queued is one frame in a session's queue.
type queued struct {
	data []byte
	// shared is set when the same frame went to several sessions: its
	// compressed form is made once, by whichever writes it first.
	shared *sharedFrame
}

// sharedFrame is a frame queued to several sessions.
type sharedFrame struct {
	once     sync.Once
	deflated []byte
}

func (f *sharedFrame) deflate(data []byte) []byte {
	f.once.Do(func() {
		f.deflated = appendDeflated(make([]byte, 0, len(data)/2+16), data)
	})
	return f.deflated
}

var (
	queuePool = sync.Pool{New: func() any { q := make([]queued, 0, 8); return &q }}
	bufPool   = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
	flatePool = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed)
		return w
	}}
)

// enqueue adds a frame to the queue and starts the writer when none runs:
// a goroutine of its own, or, inline, the caller, which writes what is
// queued once and leaves the rest, if more came meanwhile, to a
// goroutine. Inline is for a request's handler queueing its reply: the
// connection's read loop waits for it anyway, and a goroutine started
// per reply costs its start and a switch to it (issue 19).
func (sess *session) enqueue(q queued, inline bool) {
	sess.qmu.Lock()
	if sess.queue == nil {
		sess.queue = queuePool.Get().(*[]queued)
	}
	*sess.queue = append(*sess.queue, q)
	start := !sess.writing
	sess.writing = true
	sess.qmu.Unlock()
	switch {
	case !start:
	case inline:
		if sess.writeQueued() {
			go sess.writeLoop()
		}
	default:
		go sess.writeLoop()
	}
}

// writeLoop writes what is queued until the queue is empty.
func (sess *session) writeLoop() {
	for sess.writeQueued() {
	}
}

// writeQueued writes what is queued, if anything, and reports whether
// more was queued meanwhile; when not, the writer has stopped.
func (sess *session) writeQueued() bool {
	sess.qmu.Lock()
	q := sess.queue
	sess.queue = nil
	if q == nil {
		sess.writing = false
		sess.qmu.Unlock()
		return false
	}
	sess.qmu.Unlock()
	n := sess.writeBatch(*q)
	clear(*q)
	if cap(*q) <= 1024 {
		*q = (*q)[:0]
		queuePool.Put(q)
	}
	sess.pending.Add(-n)
	sess.qmu.Lock()
	more := sess.queue != nil
	sess.writing = more
	sess.qmu.Unlock()
	return more
}

// writeBatch writes frames, in as few writes as batchBytes allows, and
// returns their payload bytes. A failed write closes the connection, as
// gws does (1001); what is left of the batch is dropped.
func (sess *session) writeBatch(frames []queued) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f.data))
	}
	if sess.closing.Load() {
		return n
	}
	c := sess.conn
	netConn := c.NetConn()
	_ = netConn.SetWriteDeadline(time.Now().Add(sess.srv.cfg.WriteTimeout))
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for _, f := range frames {
		switch {
		case !sess.deflate || len(f.data) < deflateThreshold:
			buf = appendFrame(buf, false, f.data)
		case f.shared != nil:
			buf = appendFrame(buf, true, f.shared.deflate(f.data))
		default:
			// Compress after room for the longest header, then move the
			// payload down against the header.
			start := len(buf)
			buf = appendDeflated(append(buf, make([]byte, maxHeader)...), f.data)
			var h [maxHeader]byte
			hl := putHeader(&h, true, len(buf)-start-maxHeader)
			copy(buf[start:], h[:hl])
			buf = append(buf[:start+hl], buf[start+maxHeader:]...)
		}
		if len(buf) >= batchBytes {
			inc(sess.srv.metrics.SocketWrites)
			if _, err = netConn.Write(buf); err != nil {
				break
			}
			buf = buf[:0]
		}
	}
	if err == nil && len(buf) > 0 {
		_, err = netConn.Write(buf)
		inc(sess.srv.metrics.SocketWrites)
	}
	if cap(buf) <= maxPooledBuffer {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	if err != nil {
		_ = c.WriteClose(1001, nil)
	}
	return n
}

const maxHeader = 10

// putHeader writes the header of an unmasked, final text frame of n
// payload bytes into h and returns its length; compressed sets RSV1
// (permessage-deflate).
func putHeader(h *[maxHeader]byte, compressed bool, n int) int {
	h[0] = 0x81 // FIN, text
	if compressed {
		h[0] |= 0x40
	}
	switch {
	case n < 126:
		h[1] = byte(n)
		return 2
	case n <= 0xFFFF:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		return 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		return 10
	}
}

// appendFrame appends a text frame carrying payload as it is.
func appendFrame(dst []byte, compressed bool, payload []byte) []byte {
	var h [maxHeader]byte
	dst = append(dst, h[:putHeader(&h, compressed, len(payload))]...)
	return append(dst, payload...)
}

// appendDeflated appends data compressed for permessage-deflate without
// context takeover: raw DEFLATE ended by a sync flush whose trailing
// 0x00 0x00 0xff 0xff is left out (RFC 7692, 7.2.1).
func appendDeflated(dst, data []byte) []byte {
	b := bytes.NewBuffer(dst)
	w := flatePool.Get().(*flate.Writer)
	w.Reset(b)
	_, _ = w.Write(data)
	_ = w.Flush()
	flatePool.Put(w)
	out := b.Bytes()
	return out[:len(out)-4]
}
