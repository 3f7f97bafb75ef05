package chaos

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// leaderChanged waits for CHAT to elect a leader other than old and names
// both, or fails the test.
func leaderChanged(t *testing.T, js jetstream.JetStream, old string) string {
	t.Helper()
	return leaderChangedOf(t, js, schema.StreamChat, old)
}

// leaderChangedOf is leaderChanged of the message stream named stream.
func leaderChangedOf(t *testing.T, js jetstream.JetStream, stream, old string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := js.Stream(ctx, stream)
		cancel()
		if err == nil {
			if cl := st.CachedInfo().Cluster; cl != nil && cl.Leader != "" && cl.Leader != old {
				return fmt.Sprintf("leader %s -> %s", old, cl.Leader)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s has no leader other than the killed %s after 30 s", stream, old)
	return ""
}

// consumerInfo reads a CHAT consumer's state, retrying for a while (a
// node or the leader may be changing).
func consumerInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var cons jetstream.Consumer
		var info *jetstream.ConsumerInfo
		if cons, err = js.Consumer(ctx, schema.StreamChat, name); err == nil {
			info, err = cons.Info(ctx)
		}
		cancel()
		if err == nil {
			return info
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("consumer %s: %v", name, err)
	return &jetstream.ConsumerInfo{}
}

// consumerPending is how many messages a consumer has not had acked yet.
func consumerPending(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	info := consumerInfo(t, js, name)
	return info.NumPending + uint64(info.NumAckPending)
}

// fanoutPin is a fan-out partition's consumer and the client it is
// pinned to: the first partition (in order) with a pin, "" if none has.
func fanoutPin(t *testing.T, js jetstream.JetStream) (consumer, pin string) {
	t.Helper()
	l, err := schema.ReadLayout(context.Background(), js)
	if err != nil {
		t.Errorf("layout: %v", err)
		return "", ""
	}
	for _, c := range append(l.FanoutConsumers(), schema.ConsumerFanout) {
		if pin := consumerPin(t, js, c); pin != "" {
			return c, pin
		}
	}
	return "", ""
}

// consumerPin is the client a fan-out consumer is pinned to, "" if none.
func consumerPin(t *testing.T, js jetstream.JetStream, consumer string) string {
	t.Helper()
	for _, g := range consumerInfo(t, js, consumer).PriorityGroups {
		if g.Group == schema.PriorityGroupFanout {
			return g.PinnedClientID
		}
	}
	return ""
}

// killFanout kills -9 the gateway whose fan-out worker holds the pin of
// a partition while messages flow, preferably with messages delivered to
// it and not yet acked, checks the partition's pin moved to the other
// gateway's worker, and returns the index of the gateway it killed.
//
// The pin is a server-made id; the worker that holds it logs it with the
// partition's consumer, so the holder is the gateway whose log names the
// consumer's current pin.
func killFanout(t *testing.T, c *cluster, js jetstream.JetStream, r *row) int {
	t.Helper()
	holder, consumer, pin := -1, "", ""
	for deadline := time.Now().Add(10 * time.Second); holder < 0 && time.Now().Before(deadline); {
		if consumer, pin = fanoutPin(t, js); pin != "" {
			holder = pinHolder(c, consumer, pin)
		}
		if holder < 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if holder < 0 {
		t.Errorf("no gateway logged holding the fan-out pin %q of %s", pin, consumer)
		return -1
	}
	var unacked int
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		if unacked = consumerInfo(t, js, consumer).NumAckPending; unacked > 0 {
			break
		}
	}
	g := c.gateways[holder]
	g.kill()
	killed := time.Now()
	go func() {
		time.Sleep(3 * time.Second)
		g.start(false)
	}()
	for time.Now().Before(killed.Add(30 * time.Second)) {
		if next := consumerPin(t, js, consumer); next != "" && next != pin {
			r.effect = fmt.Sprintf("%s held the pin of %s; it moved after %.1f s, %d delivered unacked at the kill", g.name, consumer, time.Since(killed).Seconds(), unacked)
			return holder
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the pin of %s did not move within 30 s of killing %s, which held it", consumer, g.name)
	return holder
}

// pinHolder is the index of the gateway whose log last named pin as the
// pin of the fan-out consumer it holds, -1 if none did.
func pinHolder(c *cluster, consumer, pin string) int {
	for i, g := range c.gateways {
		if g.logs == nil {
			continue
		}
		logs := g.logs.String()
		at := strings.LastIndex(logs, `"pin":"`+pin+`"`)
		if at < 0 {
			continue
		}
		line := logs[strings.LastIndex(logs[:at], "\n")+1:]
		if end := strings.IndexByte(line, '\n'); end >= 0 {
			line = line[:end]
		}
		if strings.Contains(line, `"consumer":"`+consumer+`"`) {
			return i
		}
	}
	return -1
}

// wipeAndRebuild stops the history role, deletes its embedded store, runs
// `natter history rebuild` and reads the store directly before the writer
// is back, so what the store holds then is the rebuild's work alone.
func wipeAndRebuild(t *testing.T, c *cluster, l *load, r *row) {
	t.Helper()
	c.history.stop()
	stopped := time.Now()
	if err := os.RemoveAll(c.storeDir()); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(c.bin, "history", "rebuild", "--nats-url", c.natsURL, "--data", c.historyData()).CombinedOutput()
	if err != nil {
		t.Errorf("natter history rebuild: %v\n%s", err, out)
	}
	t.Logf("natter history rebuild: %s", out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := readLocal(ctx, c.storeDir(), l.convIDs())
	if err != nil {
		t.Errorf("read the rebuilt store: %v", err)
	}
	// Everything acked before the writer stopped must be back; sends
	// still in flight may be stored and not acked yet.
	before := func(s *sent) bool { return s.at.Before(stopped) }
	stored, problems := l.checkStore(rows, before, func(int) bool { return false })
	for _, p := range problems {
		t.Errorf("rebuilt store: %s", p)
	}
	want := 0
	l.mu.Lock()
	for _, s := range l.acked {
		if before(s) {
			want++
		}
	}
	l.mu.Unlock()
	r.effect = fmt.Sprintf("store wiped; the rebuild alone restored %d of %d messages acked before", stored, want)
	c.history.start(false)
}

// storeDownPastWindow shortens CHAT's hot window to window, keeps the
// history role down for longer than it while sends go on, then starts it
// again and restores the window. The phase's checks then prove nothing
// acked was lost although it was older than the window before the store
// had it.
func storeDownPastWindow(t *testing.T, c *cluster, js jetstream.JetStream, l *load, r *row, window, down time.Duration) {
	t.Helper()
	first0 := firstSeq(t, js) // before the window shrinks: nothing trimmed yet
	prev := setHotWindow(t, js, window)
	c.history.kill()
	stopped := time.Now()
	time.Sleep(down)
	// The nodes trim every second: stored messages older than the window
	// went, unstored ones stayed (the store check after the phase).
	first1 := firstSeq(t, js)
	if first1 <= first0 {
		t.Errorf("the trimmer never ran with the %s window: CHAT's first seq stayed %d", window, first1)
	}
	restarted := time.Now()
	c.history.start(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.UpdateStream(ctx, prev); err != nil {
		t.Errorf("restore the CHAT stream's settings: %v", err)
	}
	var during, older int
	l.mu.Lock()
	for _, s := range l.acked {
		if s.at.After(stopped) && s.at.Before(restarted) {
			during++
			if restarted.Sub(s.at) > window {
				older++
			}
		}
	}
	l.mu.Unlock()
	if older == 0 {
		t.Errorf("no message acked while the store was down was older than the %s hot window when it came back", window)
	}
	r.effect = fmt.Sprintf("store down %.0f s: %d acked meanwhile, %d of them older than the window when it came back; trimmed below seq %d", restarted.Sub(stopped).Seconds(), during, older, first1)
}

// firstSeq is CHAT's first stored seq.
func firstSeq(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.FirstSeq
}

// setHotWindow sets CHAT's hot window as an operator would (nats stream
// edit) and returns the previous settings. Where the window is the
// stream's MaxAge, the de-duplication window may not exceed it.
func setHotWindow(t *testing.T, js jetstream.JetStream, window time.Duration) jetstream.StreamConfig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	prev := st.CachedInfo().Config
	cfg := prev
	if _, ok := prev.Metadata[schema.MetaHotWindow]; ok {
		cfg.Metadata = maps.Clone(prev.Metadata)
		cfg.Metadata[schema.MetaHotWindow] = window.String()
	} else {
		cfg.MaxAge = window
		cfg.Duplicates = min(cfg.Duplicates, window)
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("shorten CHAT's hot window to %s: %v", window, err)
	}
	return prev
}
