package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latency is a concurrent-safe HdrHistogram of microseconds, 1 µs to 100 s
// at three significant digits.
type latency struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatency() *latency { return &latency{h: hdrhistogram.New(1, 100_000_000, 3)} }

func (l *latency) record(d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	l.mu.Lock()
	_ = l.h.RecordValue(us)
	l.mu.Unlock()
}

func (l *latency) merge(o *latency) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l.mu.Lock()
	l.h.Merge(o.h)
	l.mu.Unlock()
}

// latencySummary is what the table and JSON show of a histogram.
type latencySummary struct {
	P50   int64 `json:"p50"`
	P90   int64 `json:"p90"`
	P99   int64 `json:"p99"`
	P999  int64 `json:"p999"`
	Max   int64 `json:"max"`
	Count int64 `json:"count"`
}

func (l *latency) summary() latencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	return latencySummary{
		P50: l.h.ValueAtQuantile(50), P90: l.h.ValueAtQuantile(90), P99: l.h.ValueAtQuantile(99),
		P999: l.h.ValueAtQuantile(99.9), Max: l.h.Max(), Count: l.h.TotalCount(),
	}
}

// procStat is a reading of the server processes' RSS and CPU time.
type procStat struct {
	rss int64         // bytes
	cpu time.Duration // utime + stime
	ok  bool
}

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

func readProcs(pids []int) procStat {
	var s procStat
	for _, pid := range pids {
		st, err := readProc(pid)
		if err != nil {
			return procStat{}
		}
		s.rss += st.rss
		s.cpu += st.cpu
	}
	s.ok = len(pids) > 0
	return s
}

func readProc(pid int) (procStat, error) {
	var s procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				s.rss = kb << 10
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) > 13 {
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		s.cpu = time.Duration(ut+st) * time.Second / clkTck
	}
	s.ok = true
	return s, nil
}

// metricsRSS reads process_resident_memory_bytes from the /metrics of a
// server's --metrics listener (base is its http:// URL), for servers that
// are not local processes.
func metricsRSS(base string) (int64, bool) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, false
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "process_resident_memory_bytes ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len("process_resident_memory_bytes "):]), 64)
			return int64(v), err == nil
		}
	}
	return 0, false
}

// serverRSS sums RSS over the local pids, or over the servers' /metrics
// (their --metrics listeners; the client port serves no metrics).
func (c *common) serverRSS() (int64, bool) {
	if len(c.serverPIDs) > 0 {
		s := readProcs(c.serverPIDs)
		return s.rss, s.ok
	}
	if len(c.metricsURLs) == 0 {
		return 0, false
	}
	var sum int64
	for _, u := range c.metricsURLs {
		v, ok := metricsRSS(u)
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum, true
}

// loadAvg returns /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
