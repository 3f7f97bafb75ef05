package spec

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Checker follows the frames of one connection, both ways, and collects
// what breaks the spec: a frame its schema refuses, a reply of the wrong
// type or with an error code its request does not list, a reply to a
// request the schema refuses that is not an error (the server accepted
// what the spec forbids), and, when InOrder, a reply that is not the
// answer to the oldest request still waiting for one. Requests whose
// success gets no answer (typing and read without an id) wait only for an
// error: a later request's reply, in order, says they succeeded.
type Checker struct {
	spec *Spec
	// InOrder checks that replies come in request order. Only for a log
	// whose sent frames are in the order they were written to the socket.
	InOrder bool

	waiting  []waiting
	received int
	problems []string
}

type waiting struct {
	id, typ string
	invalid error // why the schema refuses the request; nil when valid
	// quiet marks a request only an error answers.
	quiet bool
}

// NewChecker returns a Checker for one connection.
func (s *Spec) NewChecker(inOrder bool) *Checker { return &Checker{spec: s, InOrder: inOrder} }

// Problems returns what broke the spec so far.
func (c *Checker) Problems() []string { return c.problems }

func (c *Checker) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// Sent takes a frame the client wrote. A frame the schema refuses is no
// problem in itself (a client may send anything); its answer must then be
// an error.
func (c *Checker) Sent(frame []byte) {
	f, err := c.spec.Validate(FromClient, frame)
	row, ok := c.spec.Requests[f.Type]
	quiet := ok && f.ID == "" && !row.ReplyWithoutID && err == nil
	c.waiting = append(c.waiting, waiting{id: f.ID, typ: f.Type, invalid: err, quiet: quiet})
}

// Received takes a frame the server sent.
func (c *Checker) Received(frame []byte) {
	c.received++
	f, err := c.spec.Validate(FromServer, frame)
	if err != nil {
		c.problem("server frame %.300s: %v", frame, err)
		return
	}
	if c.spec.IsPush(f.Type, f.Push) {
		return
	}
	if c.received == 1 && f.Type == "welcome" && f.ID == "" && len(c.waiting) == 0 {
		return // authenticated by the upgrade's header: nothing asked for it
	}
	i := c.match(f)
	if i < 0 {
		return
	}
	w := c.waiting[i]
	c.waiting = slices.Delete(c.waiting, i, i+1)
	if w.invalid != nil {
		if f.Type != "error" {
			c.problem("the server answered %.300s to a %q frame the schema refuses (%v)", frame, w.typ, w.invalid)
		}
		return
	}
	row := c.spec.Requests[w.typ]
	switch f.Type {
	case row.Reply:
	case "error":
		var e struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(frame, &e)
		if !slices.Contains(row.Errors, e.Code) {
			c.problem("%q answered with error code %q, which frames.json does not list for it (%v): %.300s", w.typ, e.Code, row.Errors, frame)
		}
	default:
		c.problem("%q answered with %q, frames.json says %q: %.300s", w.typ, f.Type, row.Reply, frame)
	}
}

// match finds the request a reply answers: the oldest waiting one when
// InOrder (a problem when the ids differ), else the oldest with the
// reply's id. -1 when there is none to check against.
func (c *Checker) match(f Frame) int {
	if c.InOrder {
		if f.Type != "error" || f.ID != "" {
			// Anything but an error without an id passed the quiet
			// requests before the one it answers: they succeeded.
			for len(c.waiting) > 0 && c.waiting[0].quiet {
				c.waiting = c.waiting[1:]
			}
		}
		if len(c.waiting) == 0 {
			c.problem("a %q reply (id %q) while no request waits for one", f.Type, f.ID)
			return -1
		}
		if w := c.waiting[0]; w.id != f.ID {
			c.problem("a %q reply with id %q, but the oldest request waiting is %q with id %q: replies come in request order", f.Type, f.ID, w.typ, w.id)
			return -1
		}
		return 0
	}
	return slices.IndexFunc(c.waiting, func(w waiting) bool { return w.id == f.ID })
}
