package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/protocol"
)

// The checks here read the history store itself, not sync: sync may
// answer rows the store lacks from the stream, so only a direct read
// shows what survives the stream's hot window.

// storeDir is the embedded store of the history role.
func (c *cluster) storeDir() string { return filepath.Join(c.historyData(), "history") }

// readStore reads every row of convs from the store the history role
// writes now. The embedded store has one process at a time, so the role
// is stopped (SIGTERM) for the read and, with restart, started again.
func (c *cluster) readStore(t *testing.T, ctx context.Context, convs []string, restart bool) map[string][]*protocol.Message {
	t.Helper()
	if c.cql != nil {
		rows, err := readCQL(ctx, *c.cql, convs)
		if err != nil {
			t.Errorf("read the Cassandra history store: %v", err)
		}
		return rows
	}
	c.history.stop()
	rows, err := readLocal(ctx, c.storeDir(), convs)
	if err != nil {
		t.Errorf("read the embedded history store: %v", err)
	}
	if restart {
		c.history.start(true)
	}
	return rows
}

func readLocal(ctx context.Context, dir string, convs []string) (map[string][]*protocol.Message, error) {
	s, err := localstore.New(localstore.Config{Dir: dir, NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return readAll(ctx, s, convs)
}

func readCQL(ctx context.Context, cfg scyllastore.Config, convs []string) (map[string][]*protocol.Message, error) {
	s, err := scyllastore.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return readAll(ctx, s, convs)
}

func readAll(ctx context.Context, s history.Store, convs []string) (map[string][]*protocol.Message, error) {
	rows := map[string][]*protocol.Message{}
	for _, conv := range convs {
		var after uint64
		for {
			page, more, err := s.After(ctx, conv, after, 500)
			if err != nil {
				return rows, fmt.Errorf("%s after %d: %w", conv, after, err)
			}
			rows[conv] = append(rows[conv], page...)
			if !more || len(page) == 0 {
				break
			}
			after = page[len(page)-1].Seq
		}
	}
	return rows, nil
}

// convIDs lists the load's conversations.
func (l *load) convIDs() []string {
	var ids []string
	for conv := range l.convs {
		ids = append(ids, conv)
	}
	slices.Sort(ids)
	return ids
}

// checkStore compares rows read from a store with the acks: every acked
// message that include selects is stored at its acked seq, as sent; no
// message is stored twice (under two seqs); every stored message sent in
// a phase strays selects was acknowledged. stored counts the acked
// messages selected and found.
func (l *load) checkStore(rows map[string][]*protocol.Message, include func(*sent) bool, strays func(phase int) bool) (stored int, problems []string) {
	l.mu.Lock()
	acked := make([]*sent, 0, len(l.acked))
	byID := map[string]*sent{}
	for k, s := range l.acked {
		acked = append(acked, s)
		byID[k] = s
	}
	l.mu.Unlock()
	bySeq := map[string]map[uint64]*protocol.Message{}
	for conv, ms := range rows {
		bySeq[conv] = map[uint64]*protocol.Message{}
		seen := map[string]uint64{}
		for _, m := range ms {
			bySeq[conv][m.Seq] = m
			if m.Kind != "" {
				continue
			}
			key := m.Sender + "/" + m.ClientID
			if prev, dup := seen[key]; dup {
				problems = append(problems, fmt.Sprintf("%s: %s stored twice (seq %d and %d)", conv, key, prev, m.Seq))
			}
			seen[key] = m.Seq
			if s := byID[conv+"/"+m.ClientID]; s == nil && strays(phaseOf(m.ClientID)) {
				problems = append(problems, fmt.Sprintf("%s: seq %d (%s) stored but never acknowledged", conv, m.Seq, key))
			}
		}
	}
	for _, s := range acked {
		if !include(s) {
			continue
		}
		switch m := bySeq[s.conv][s.seq]; {
		case m == nil:
			problems = append(problems, fmt.Sprintf("%s: acked seq %d (%s) not in the store", s.conv, s.seq, s.clientID))
		case m.Sender != s.sender || m.ClientID != s.clientID:
			problems = append(problems, fmt.Sprintf("%s: seq %d is %s/%s in the store, acked as %s/%s", s.conv, s.seq, m.Sender, m.ClientID, s.sender, s.clientID))
		default:
			stored++
		}
	}
	return stored, problems
}

// phaseOf is the phase a client_id of the load was sent in ("u3-p2-17").
func phaseOf(clientID string) int {
	parts := strings.Split(clientID, "-")
	if len(parts) != 3 {
		return -1
	}
	p, err := strconv.Atoi(strings.TrimPrefix(parts[1], "p"))
	if err != nil {
		return -1
	}
	return p
}

// checkAll is the final check over every phase: each acked message is in
// the store its phase wrote to, read directly (the embedded one, or
// Cassandra for cqlPhase), and was delivered to every other member; no
// duplicate and no out-of-order push in any phase. Nothing waits here:
// each phase already waited for its deliveries and its store.
func (l *load) checkAll(t *testing.T, c *cluster, cqlPhase int) row {
	t.Helper()
	r := row{fault: "all phases, checked again at the end"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	convs := l.convIDs()
	local, err := func() (map[string][]*protocol.Message, error) {
		c.history.stop() // stopped already when the last phase ran on Cassandra
		return readLocal(ctx, c.storeDir(), convs)
	}()
	if err != nil {
		t.Errorf("final check: read the embedded history store: %v", err)
	}
	notCQL := func(p int) bool { return p != cqlPhase }
	n, problems := l.checkStore(local, func(s *sent) bool { return notCQL(s.phase) }, notCQL)
	r.stored += n
	if c.cql != nil {
		rows, err := readCQL(ctx, *c.cql, convs)
		if err != nil {
			t.Errorf("final check: read the Cassandra history store: %v", err)
		}
		isCQL := func(p int) bool { return p == cqlPhase }
		n, more := l.checkStore(rows, func(s *sent) bool { return isCQL(s.phase) }, isCQL)
		r.stored += n
		problems = append(problems, more...)
	}
	for _, p := range problems {
		t.Errorf("final check: history store read directly: %s", p)
	}
	phases := l.currentPhase()
	for p := 1; p <= phases; p++ {
		acked, delivered, _, missing := l.missing(p)
		r.acked += acked
		r.delivered += delivered
		for _, m := range missing {
			t.Errorf("final check: phase %d: not delivered: %s", p, m)
		}
	}
	l.mu.Lock()
	for _, d := range l.dups {
		r.dups += len(d)
	}
	for _, o := range l.outOfOrder {
		r.outOfOrder += len(o)
	}
	r.viaSync = l.viaSync
	l.mu.Unlock()
	for _, s := range l.sessions {
		r.reconnects += s.Connects() - 1
	}
	r.lost = r.acked - min(r.delivered, r.stored)
	if r.lost > 0 {
		t.Errorf("final check: %d acked messages lost", r.lost)
	}
	r.effect = fmt.Sprintf("%d phases", phases)
	return r
}
