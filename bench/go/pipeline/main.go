// Workload 1 in Go, written the way the product brief's concurrency
// lessons teach: one goroutine per stage joined by buffered channels, a
// context for cancellation, encoding/json for both directions.
//
//	read (bufio.Scanner) -> parse (json.Unmarshal) -> filter status >= 500
//	-> map (latency_s = latency_ms / 1000.0, severity = "high")
//	-> write (json.Marshal, bufio.Writer)
//
// Records are schema-less (map[string]any), like a generic pipeline's;
// with -typed they are a struct with the event's fields instead, which is
// how a program written for this one data set would do it.
//
// Usage: pipeline [-typed] [-buffer N] INPUT OUTPUT
// Prints "records_in N records_out N wall_s S" on stderr.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

type event struct {
	ID        int64   `json:"id"`
	TS        string  `json:"ts"`
	User      string  `json:"user"`
	Status    int64   `json:"status"`
	Path      string  `json:"path"`
	Bytes     int64   `json:"bytes"`
	LatencyMS float64 `json:"latency_ms"`
	LatencyS  float64 `json:"latency_s,omitempty"`
	Severity  string  `json:"severity,omitempty"`
}

// A record is one of the two, depending on -typed.
type record struct {
	m map[string]any
	e *event
}

func read(ctx context.Context, path string, out chan<- []byte, errc chan<- error) {
	defer close(out)
	f, err := os.Open(path)
	if err != nil {
		errc <- err
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		select {
		case out <- line:
		case <-ctx.Done():
			return
		}
	}
	if err := sc.Err(); err != nil {
		errc <- err
	}
}

func parse(ctx context.Context, typed bool, in <-chan []byte, out chan<- record, errc chan<- error) {
	defer close(out)
	for line := range in {
		var r record
		var err error
		if typed {
			r.e = new(event)
			err = json.Unmarshal(line, r.e)
		} else {
			err = json.Unmarshal(line, &r.m)
		}
		if err != nil {
			errc <- err
			return
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}

func status(r record) float64 {
	if r.e != nil {
		return float64(r.e.Status)
	}
	s, _ := r.m["status"].(float64)
	return s
}

func filter(ctx context.Context, in <-chan record, out chan<- record) {
	defer close(out)
	for r := range in {
		if status(r) < 500 {
			continue
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}

func enrich(ctx context.Context, in <-chan record, out chan<- record) {
	defer close(out)
	for r := range in {
		if r.e != nil {
			r.e.LatencyS = r.e.LatencyMS / 1000.0
			r.e.Severity = "high"
		} else {
			ms, _ := r.m["latency_ms"].(float64)
			r.m["latency_s"] = ms / 1000.0
			r.m["severity"] = "high"
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}

func write(path string, in <-chan record, done chan<- int64, errc chan<- error) {
	var n int64
	defer func() { done <- n }()
	f, err := os.Create(path)
	if err != nil {
		errc <- err
		return
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<16)
	for r := range in {
		var b []byte
		if r.e != nil {
			b, err = json.Marshal(r.e)
		} else {
			b, err = json.Marshal(r.m)
		}
		if err != nil {
			errc <- err
			return
		}
		w.Write(b)
		w.WriteByte('\n')
		n++
	}
	if err := w.Flush(); err != nil {
		errc <- err
	}
}

func main() {
	typed := flag.Bool("typed", false, "decode into a struct instead of map[string]any")
	buffer := flag.Int("buffer", 1024, "capacity of each channel")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: pipeline [-typed] [-buffer N] INPUT OUTPUT")
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()

	errc := make(chan error, 5)
	lines := make(chan []byte, *buffer)
	parsed := make(chan record, *buffer)
	kept := make(chan record, *buffer)
	mapped := make(chan record, *buffer)
	done := make(chan int64, 1)

	go read(ctx, flag.Arg(0), lines, errc)
	go parse(ctx, *typed, lines, parsed, errc)
	go filter(ctx, parsed, kept)
	go enrich(ctx, kept, mapped)
	go write(flag.Arg(1), mapped, done, errc)

	var n int64
	select {
	case n = <-done:
	case err := <-errc:
		cancel()
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	default:
	}
	fmt.Fprintf(os.Stderr, "records_out %d wall_s %.3f\n", n, time.Since(start).Seconds())
}
