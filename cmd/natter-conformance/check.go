package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/natter-chat/natter/protocol/spec"
)

// logLine is one line of a recorded frame log.
type logLine struct {
	Conn  string          `json:"conn"`
	Dir   string          `json:"dir"`
	Frame json.RawMessage `json:"frame"`
}

// report checks the traffic of many connections and counts what was
// exercised. Safe for concurrent use.
type report struct {
	spec *spec.Spec

	mu     sync.Mutex
	conns  map[string]*spec.Checker
	order  []string
	sent   map[string]int // request types sent
	recv   map[string]int // server frame types received
	frames int
}

func newReport() (*report, error) {
	s, err := spec.Load()
	if err != nil {
		return nil, err
	}
	return &report{spec: s, conns: map[string]*spec.Checker{}, sent: map[string]int{}, recv: map[string]int{}}, nil
}

// frame takes one frame of connection conn.
func (r *report) frame(conn string, sent bool, frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[conn]
	if !ok {
		c = r.spec.NewChecker(true)
		r.conns[conn] = c
		r.order = append(r.order, conn)
	}
	r.frames++
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(frame, &head)
	if sent {
		r.sent[head.Type]++
		c.Sent(frame)
	} else {
		r.recv[head.Type]++
		c.Received(frame)
	}
}

// print writes the problems and what was exercised, and reports whether
// anything broke the spec.
func (r *report) print(w io.Writer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := 0
	for _, conn := range r.order {
		for _, p := range r.conns[conn].Problems() {
			fmt.Fprintf(w, "FAIL %s: %s\n", conn, p)
			bad++
		}
	}
	var untried []string
	for _, t := range r.spec.Types(spec.FromClient) {
		if r.sent[t] == 0 {
			untried = append(untried, t)
		}
	}
	fmt.Fprintf(w, "%d frames on %d connections; requests sent: %v; server frames seen: %v\n",
		r.frames, len(r.order), slices.Sorted(maps.Keys(r.sent)), slices.Sorted(maps.Keys(r.recv)))
	if len(untried) > 0 {
		fmt.Fprintf(w, "requests never sent (not checked): %v\n", untried)
	}
	if bad > 0 {
		fmt.Fprintf(w, "%d problems\n", bad)
		return false
	}
	fmt.Fprintln(w, "ok: every frame conforms")
	return true
}

func checkLog(in io.Reader, out io.Writer) error {
	r, err := newReport()
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		frame := []byte(l.Frame)
		var text string
		if json.Unmarshal(l.Frame, &text) == nil {
			frame = []byte(text)
		}
		switch l.Dir {
		case "sent", "recv":
			r.frame(l.Conn, l.Dir == "sent", frame)
		default:
			return fmt.Errorf("line %d: dir %q, want sent or recv", n, l.Dir)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !r.print(out) {
		return errNonConformant
	}
	return nil
}
