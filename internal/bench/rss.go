package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// rssMeter follows this process's resident memory on Linux, from
// /proc/self/status; elsewhere it reads 0.
type rssMeter struct {
	now int64 // the last sample
	max int64 // the largest sample since reset
	hwm bool  // the kernel's high-water mark was reset with the meter
}

func newRSSMeter() *rssMeter { return &rssMeter{} }

// reset starts a new peak: the kernel's high-water mark is cleared too, so
// that memory the process held before (the producers', the baseline's)
// does not count.
func (m *rssMeter) reset() {
	m.hwm = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	m.max = 0
	m.sample()
}

func (m *rssMeter) sample() {
	m.now = procStatus("VmRSS:")
	m.max = max(m.max, m.now)
}

// peak is the largest resident size since reset: the kernel's high-water
// mark where it was reset, else the largest sample.
func (m *rssMeter) peak() int64 {
	m.sample()
	if !m.hwm {
		return m.max
	}
	return max(m.max, procStatus("VmHWM:"))
}

// procStatus reads a size field of /proc/self/status in bytes, or 0.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		f := bytes.Fields(line[len(field):])
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}
