package kafka

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	errBoom := errors.New("boom")
	tiny := RetryPolicy{ShortInterval: time.Millisecond, ShortTotal: 20 * time.Millisecond, LongInterval: 5 * time.Millisecond, LongTotal: 30 * time.Millisecond}
	for _, tc := range []struct {
		name        string
		policy      RetryPolicy
		failures    int   // fn fails this many times, then succeeds (-1: always)
		failWith    error // error for failures
		cancelAfter int   // cancel ctx after this many calls (0: never)
		wantErr     bool
		wantIs      error
		wantCalls   func(n int) bool
		maxDuration time.Duration
	}{
		{name: "first try", policy: tiny, failures: 0, wantCalls: func(n int) bool { return n == 1 }},
		{name: "after 5 failures", policy: tiny, failures: 5, failWith: errBoom, wantCalls: func(n int) bool { return n == 6 }},
		{name: "into the long phase", policy: RetryPolicy{ShortInterval: time.Millisecond, ShortTotal: 5 * time.Millisecond, LongInterval: 2 * time.Millisecond, LongTotal: time.Second},
			failures: 30, failWith: errBoom, wantCalls: func(n int) bool { return n == 31 }},
		{name: "non-retriable stops", policy: tiny, failures: -1, failWith: NonRetriable(errBoom), wantErr: true, wantIs: errBoom,
			wantCalls: func(n int) bool { return n == 1 }},
		{name: "non-retriable later", policy: tiny, failures: -1, failWith: errBoom, cancelAfter: -3, wantErr: true, wantIs: errBoom,
			wantCalls: func(n int) bool { return n == 3 }},
		{name: "ctx cancelled", policy: RetryPolicy{ShortInterval: time.Millisecond, ShortTotal: time.Hour}, failures: -1, failWith: errBoom,
			cancelAfter: 4, wantErr: true, wantIs: context.Canceled, wantCalls: func(n int) bool { return n == 4 }, maxDuration: time.Second},
		{name: "gives up", policy: tiny, failures: -1, failWith: errBoom, wantErr: true, wantIs: errBoom,
			wantCalls: func(n int) bool { return n > 5 }, maxDuration: time.Second},
		{name: "no phases: one try", policy: RetryPolicy{}, failures: -1, failWith: errBoom, wantErr: true, wantIs: errBoom,
			wantCalls: func(n int) bool { return n == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			start := time.Now()
			err := Retry(ctx, tc.policy, "step-x", func(ctx context.Context) error {
				calls++
				if tc.cancelAfter > 0 && calls == tc.cancelAfter {
					cancel()
				}
				if tc.cancelAfter < 0 && calls == -tc.cancelAfter {
					return NonRetriable(errBoom)
				}
				if tc.failures == -1 || calls <= tc.failures {
					return tc.failWith
				}
				return nil
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "step-x") {
					t.Errorf("error does not name the step: %v", err)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("error %v is not %v", err, tc.wantIs)
				}
			}
			if !tc.wantCalls(calls) {
				t.Errorf("fn called %d times", calls)
			}
			if tc.maxDuration > 0 && time.Since(start) > tc.maxDuration {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}

func TestNonRetriable(t *testing.T) {
	if NonRetriable(nil) != nil {
		t.Fatal("NonRetriable(nil) != nil")
	}
	base := errors.New("base")
	err := NonRetriable(base)
	if !IsNonRetriable(err) || !errors.Is(err, base) || err.Error() != "base" {
		t.Fatalf("marking lost something: %v", err)
	}
	wrapped := errors.Join(errors.New("context"), err)
	if !IsNonRetriable(wrapped) {
		t.Fatal("mark lost through wrapping")
	}
	if IsNonRetriable(base) {
		t.Fatal("unmarked error counted as non-retriable")
	}
}

// silentListener accepts connections and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestRetryNotifyAndExhaustion(t *testing.T) {
	errBoom := errors.New("boom")
	p := RetryPolicy{ShortInterval: time.Millisecond, ShortTotal: 10 * time.Millisecond, LongInterval: 3 * time.Millisecond, LongTotal: 15 * time.Millisecond}
	var seen []Attempt
	calls := 0
	err := RetryNotify(context.Background(), p, "step-y", func(a Attempt) { seen = append(seen, a) }, func(context.Context) error {
		calls++
		return errBoom
	})
	if !IsRetriesExhausted(err) || !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "step-y") {
		t.Fatalf("err = %v, want an exhausted retry naming the step and wrapping the cause", err)
	}
	if len(seen) != calls || calls < 3 {
		t.Fatalf("%d calls, %d notifications", calls, len(seen))
	}
	for i, a := range seen {
		if a.Number != i+1 || a.Step != "step-y" || !errors.Is(a.Err, errBoom) || a.Next <= 0 {
			t.Fatalf("notification %d: %+v", i, a)
		}
	}
	if last := seen[len(seen)-1]; last.Next != p.LongInterval {
		t.Fatalf("last notification announces %v, want the long interval %v", last.Next, p.LongInterval)
	}
	// A success or a non-retriable error is not exhaustion.
	err = RetryNotify(context.Background(), p, "step-z", nil, func(context.Context) error { return NonRetriable(errBoom) })
	if err == nil || IsRetriesExhausted(err) {
		t.Fatalf("non-retriable: %v", err)
	}
}
