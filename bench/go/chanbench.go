// Channel throughput on a Go buffered channel, the same workloads as
// bench/bench_channel.c: capacity 1024, SPSC and MPMC (2 producers,
// 2 consumers), one item per channel operation or a slice of 64 per
// operation (counted per item).
//
// Usage: go run chanbench.go [ITEMS] [WORKLOAD...]   (default 20000000, all)
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// cpuNow is the process CPU time (user + system, all threads).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const capacity = 1024
const batch = 64

func runSingle(items uint64, producers, consumers int) (time.Duration, uint64, uint64) {
	ch := make(chan uintptr, capacity)
	per := items / uint64(producers)
	var wg, cwg sync.WaitGroup
	sums := make([]uint64, consumers)
	counts := make([]uint64, consumers)
	start := time.Now()
	for c := 0; c < consumers; c++ {
		cwg.Add(1)
		go func(c int) {
			defer cwg.Done()
			var s, n uint64
			for v := range ch {
				s += uint64(v)
				n++
			}
			sums[c], counts[c] = s, n
		}(c)
	}
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			base := uint64(p) * per
			for i := uint64(1); i <= per; i++ {
				ch <- uintptr(base + i)
			}
		}(p)
	}
	wg.Wait()
	close(ch)
	cwg.Wait()
	elapsed := time.Since(start)
	var s, n uint64
	for c := 0; c < consumers; c++ {
		s += sums[c]
		n += counts[c]
	}
	return elapsed, s, n
}

func runBatch(items uint64, producers, consumers int) (time.Duration, uint64, uint64) {
	ch := make(chan []uintptr, capacity)
	per := items / uint64(producers)
	var wg, cwg sync.WaitGroup
	sums := make([]uint64, consumers)
	counts := make([]uint64, consumers)
	start := time.Now()
	for c := 0; c < consumers; c++ {
		cwg.Add(1)
		go func(c int) {
			defer cwg.Done()
			var s, n uint64
			for b := range ch {
				for _, v := range b {
					s += uint64(v)
				}
				n += uint64(len(b))
			}
			sums[c], counts[c] = s, n
		}(c)
	}
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			base := uint64(p) * per
			for i := uint64(1); i <= per; {
				b := make([]uintptr, 0, batch)
				for len(b) < batch && i <= per {
					b = append(b, uintptr(base+i))
					i++
				}
				ch <- b
			}
		}(p)
	}
	wg.Wait()
	close(ch)
	cwg.Wait()
	elapsed := time.Since(start)
	var s, n uint64
	for c := 0; c < consumers; c++ {
		s += sums[c]
		n += counts[c]
	}
	return elapsed, s, n
}

func main() {
	items := uint64(20000000)
	if len(os.Args) > 1 {
		v, err := strconv.ParseUint(os.Args[1], 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad item count:", os.Args[1])
			os.Exit(2)
		}
		items = v
	}
	wanted := func(name string) bool {
		if len(os.Args) <= 2 {
			return true
		}
		for _, a := range os.Args[2:] {
			if a == name {
				return true
			}
		}
		return false
	}
	type workload struct {
		name                 string
		producers, consumers int
		batched              bool
	}
	workloads := []workload{
		{"spsc_single", 1, 1, false},
		{"spsc_batch", 1, 1, true},
		{"mpmc_single", 2, 2, false},
		{"mpmc_batch", 2, 2, true},
	}
	fmt.Printf("%-12s %10s %9s %10s %8s %9s\n", "workload", "items", "seconds", "Mitems/s",
		"ns/item", "cpu_ns/it")
	status := 0
	for _, w := range workloads {
		if !wanted(w.name) {
			continue
		}
		var d time.Duration
		var s, n uint64
		cpu0 := cpuNow()
		if w.batched {
			d, s, n = runBatch(items, w.producers, w.consumers)
		} else {
			d, s, n = runSingle(items, w.producers, w.consumers)
		}
		cpu := cpuNow() - cpu0
		total := items / uint64(w.producers) * uint64(w.producers)
		if n != total || s != total*(total+1)/2 {
			fmt.Fprintf(os.Stderr, "%s: received %d items, wrong sum\n", w.name, n)
			status = 1
			continue
		}
		sec := d.Seconds()
		fmt.Printf("%-12s %10d %9.3f %10.2f %8.2f %9.2f\n", w.name, total, sec,
			float64(total)/sec/1e6, float64(d.Nanoseconds())/float64(total),
			float64(cpu.Nanoseconds())/float64(total))
	}
	os.Exit(status)
}
