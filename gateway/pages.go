package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/natter-chat/natter/protocol"
)

// encodedFrame is a reply already encoded: sess.reply queues it as is.
// Pages are encoded item by item, to measure them as they grow.
type encodedFrame []byte

// pageBytes is the bound of a page's frame: protocol.MaxPageBytes, or a
// quarter of the send queue when an operator set that below 4 MiB, so a
// page and the pushes around it can never fill the queue.
func (s *Server) pageBytes() int {
	return int(min(protocol.MaxPageBytes, s.cfg.MaxPendingBytes/4))
}

// page encodes the items of a reply one by one until the next one would
// take the frame past its bound. The first item always goes in, so a page
// that stops early is never empty; one item is at most a 64 KiB body plus
// its fields, well under the bound. Items are encoded without HTML
// escaping: a body full of '<' must not grow six-fold on the way out.
type page struct {
	buf  *bytes.Buffer
	enc  *json.Encoder // made by the first add
	ends []int         // where each item ends in buf; a newline follows each
	room int           // bytes left for items and the commas between them
}

// pageBufs keeps the buffers pages encode their items into: a page of
// 500 messages is some 150 KiB, which every sync would otherwise grow
// anew. A buffer grown past maxPooledPage is left to the collector.
var pageBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledPage = 2 * protocol.MaxPageBytes

// newPage starts a page whose frame, with head and a tail of at most
// tailMax bytes around its items, stays within limit. release gives its
// buffer back once the frame is made.
func newPage(limit, head, tailMax int) *page {
	buf := pageBufs.Get().(*bytes.Buffer)
	buf.Reset()
	return &page{buf: buf, room: limit - head - tailMax}
}

// release returns the page's buffer to the pool; the page is done.
func (p *page) release() {
	if p.buf.Cap() <= maxPooledPage {
		pageBufs.Put(p.buf)
	}
	p.buf, p.enc = nil, nil
}

// add encodes v and keeps it if it fits, reporting whether it did.
func (p *page) add(v any) (bool, error) {
	if p.enc == nil {
		p.enc = json.NewEncoder(p.buf)
		p.enc.SetEscapeHTML(false)
	}
	start := p.buf.Len()
	if err := p.enc.Encode(v); err != nil {
		p.buf.Truncate(start)
		return false, err
	}
	return p.keep(start), nil
}

// addMessage encodes m as add does, without encoding/json
// (protocol.AppendMessage writes the same bytes), and keeps it if it
// fits, reporting whether it did.
func (p *page) addMessage(m *protocol.Message) bool {
	start := p.buf.Len()
	// Room for the item up front, so that AppendMessage writes in place
	// (escapes may take more; append then grows a copy).
	p.buf.Grow(len(m.Body) + len(m.Type) + len(m.Conv) + len(m.Sender) + len(m.ClientID) + len(m.TS) + len(m.Kind) + 192)
	b := protocol.AppendMessage(p.buf.AvailableBuffer(), m)
	p.buf.Write(append(b, '\n'))
	return p.keep(start)
}

// keep keeps the item written to buf from start if it fits the page.
func (p *page) keep(start int) bool {
	n := p.buf.Len() - start // with the newline, which becomes a comma
	if len(p.ends) > 0 && n > p.room {
		p.buf.Truncate(start)
		return false
	}
	p.room -= n
	p.ends = append(p.ends, p.buf.Len()-1)
	return true
}

// len is how many items the page has.
func (p *page) len() int { return len(p.ends) }

// frame returns head, the items comma separated (in reverse order when
// reverse) and tail.
func (p *page) frame(head []byte, reverse bool, tail ...[]byte) []byte {
	n := len(head) + p.buf.Len()
	for _, t := range tail {
		n += len(t)
	}
	out := append(make([]byte, 0, n), head...)
	data := p.buf.Bytes()
	for k := range p.ends {
		i := k
		if reverse {
			i = len(p.ends) - 1 - k
		}
		start := 0
		if i > 0 {
			start = p.ends[i-1] + 1
		}
		if k > 0 {
			out = append(out, ',')
		}
		out = append(out, data[start:p.ends[i]]...)
	}
	for _, t := range tail {
		out = append(out, t...)
	}
	return out
}

// appendHead appends `{"type":typ` and, when the request had one, its id.
func appendHead(dst []byte, typ, id string) []byte {
	dst = append(dst, `{"type":`...)
	dst = protocol.AppendString(dst, typ)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = protocol.AppendString(dst, id)
	}
	return dst
}

// firstRead is how many messages a page reads first. A page of large
// messages is full long before its limit: reading all 500 of a limit for
// the 16 of 64 KiB that fit would cost 30 MiB a page. When the first read
// fits, the rest of the limit is read in one go.
const firstRead = 100

// messageReader reads up to limit messages of conv next to seq from
// (after it for sync, before it for history), ascending, and says whether
// more exist further on: Messages.After or Messages.Before.
type messageReader func(ctx context.Context, conv string, from uint64, limit int) ([]*protocol.Message, bool, error)

// messagesPage reads and encodes the reply to sync (forwards, keepNewest
// false) or history (backwards from before, keepNewest true) from seq
// from. What does not fit the frame is left for the next page: the
// newest messages are kept for history, whose more then says older ones
// exist, the oldest for sync.
func (sess *session) messagesPage(ctx context.Context, req *protocol.Request, from uint64, keepNewest bool, read messageReader) (any, *protocol.Error) {
	return sess.messagesPageRoot(ctx, req, nil, from, keepNewest, read)
}

// messagesPageRoot is messagesPage with the root of the thread a thread
// request pages, which the frame carries ahead of the page.
func (sess *session) messagesPageRoot(ctx context.Context, req *protocol.Request, root *protocol.Message, from uint64, keepNewest bool, read messageReader) (any, *protocol.Error) {
	head := appendHead(make([]byte, 0, 64+len(req.ID)+len(req.Conv)), protocol.TypeMessages, req.ID)
	head = append(head, `,"conv":`...)
	head = protocol.AppendString(head, req.Conv)
	if req.Type == protocol.TypeThread {
		head = append(head, `,"thread":`...)
		head = strconv.AppendUint(head, req.Thread, 10)
		if root != nil {
			head = append(head, `,"root":`...)
			head = protocol.AppendMessage(head, root)
		}
	}
	head = append(head, `,"messages":[`...)
	const tailMax = len(`],"more":false}`)
	p := newPage(sess.srv.pageBytes(), len(head), tailMax)
	defer p.release()
	limit := pageLimit(req.Limit, protocol.MaxLimit)
	more := true
	for full := false; more && !full && p.len() < limit; {
		n := limit - p.len()
		if p.len() == 0 {
			n = min(n, firstRead)
		}
		msgs, storeMore, err := read(ctx, req.Conv, from, n)
		if err != nil {
			return nil, sess.fail(err)
		}
		more = storeMore
		if len(msgs) == 0 {
			break
		}
		for k := range msgs {
			i := k
			if keepNewest {
				i = len(msgs) - 1 - k
			}
			sess.srv.withFiles(ctx, msgs[i])
			if !p.addMessage(msgs[i]) {
				more, full = true, true
				break
			}
			from = msgs[i].Seq
		}
	}
	tail := strconv.AppendBool([]byte(`],"more":`), more)
	return encodedFrame(p.frame(head, keepNewest, append(tail, '}'))), nil
}

// Cursors of conversations pages are opaque to clients: today they name
// the last conversation id of the page (pages go by id), with a version
// prefix so that another order (by last activity, say) can change them
// and tell an old cursor from a new one.
const (
	convCursorPrefix = "id:"
	// maxConvCursor bounds an encoded cursor.
	maxConvCursor = (len(convCursorPrefix) + protocol.MaxIDLen + 2) / 3 * 4
)

func encodeConvCursor(lastConv string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(convCursorPrefix + lastConv))
}

// decodeConvCursor returns the conversation id a cursor names; a missing
// or empty cursor is the start ("").
func decodeConvCursor(raw json.RawMessage) (string, *protocol.Error) {
	bad := protocol.Errorf(protocol.CodeBadRequest, "after must be the next cursor of a previous conversations reply")
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || len(s) > maxConvCursor {
		return "", bad
	}
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", bad
	}
	conv, ok := strings.CutPrefix(string(b), convCursorPrefix)
	if !ok || !protocol.ValidID(conv) {
		return "", bad
	}
	return conv, nil
}
