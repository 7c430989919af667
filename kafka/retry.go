package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRetriesExhausted marks the error of a Retry whose schedule ran out: the step failed at
// every attempt for ShortTotal and then LongTotal.
var ErrRetriesExhausted = errors.New("retries exhausted")

// IsRetriesExhausted reports whether err ends a Retry whose schedule ran out.
func IsRetriesExhausted(err error) bool { return errors.Is(err, ErrRetriesExhausted) }

// Attempt describes one failed attempt of a Retry, for the caller's logs and health reports.
type Attempt struct {
	Step    string
	Number  int           // 1 for the first attempt
	Elapsed time.Duration // since the first attempt began
	Next    time.Duration // pause before the next attempt (0: none, the schedule is over)
	Err     error
}

// Retry runs fn at once and, while it fails, again every ShortInterval until
// ShortTotal has passed, then every LongInterval for a
// further LongTotal. It stops early when ctx ends or when fn returns an error
// marked by NonRetriable. A phase whose interval or total is not positive is
// skipped. The returned error names step and wraps fn's last error; when the
// schedule ran out it also wraps ErrRetriesExhausted.
//
// Fabric panics when its schedule runs out; here the caller gets an error
// and decides (report unhealthy, try again later).
func Retry(ctx context.Context, p RetryPolicy, step string, fn func(ctx context.Context) error) error {
	return RetryNotify(ctx, p, step, nil, fn)
}

// RetryNotify is Retry that tells notify (if not nil) of every failed attempt that will be
// retried, so that callers can report progress while a long schedule runs.
func RetryNotify(ctx context.Context, p RetryPolicy, step string, notify func(Attempt), fn func(ctx context.Context) error) error {
	start := time.Now()
	attempts := 0
	try := func() error {
		attempts++
		return fn(ctx)
	}
	tell := func(err error, next time.Duration) {
		if notify != nil {
			notify(Attempt{Step: step, Number: attempts, Elapsed: time.Since(start), Next: next, Err: err})
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: not started: %w", step, err)
	}
	lastErr := try()
	if lastErr == nil {
		return nil
	}
	if IsNonRetriable(lastErr) {
		return fmt.Errorf("%s: %w", step, lastErr)
	}
	phases := []struct{ interval, total time.Duration }{
		{p.ShortInterval, p.ShortTotal},
		{p.LongInterval, p.LongTotal},
	}
	told := false
	for _, ph := range phases {
		if ph.interval <= 0 || ph.total <= 0 {
			continue
		}
		if !told {
			tell(lastErr, ph.interval) // the first attempt
			told = true
		}
		deadline := time.Now().Add(ph.total)
		t := time.NewTicker(ph.interval)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: stopped after %d attempts: %w (last error: %w)", step, attempts, ctx.Err(), lastErr)
			case <-t.C:
			}
			if lastErr = try(); lastErr == nil {
				t.Stop()
				return nil
			}
			if IsNonRetriable(lastErr) {
				t.Stop()
				return fmt.Errorf("%s: %w", step, lastErr)
			}
			tell(lastErr, ph.interval)
		}
		t.Stop()
	}
	return fmt.Errorf("%s: %w: gave up after %d attempts in %s (Retry.ShortInterval %s for ShortTotal %s, then LongInterval %s for LongTotal %s): %w",
		step, ErrRetriesExhausted, attempts, time.Since(start).Round(time.Millisecond),
		p.ShortInterval, p.ShortTotal, p.LongInterval, p.LongTotal, lastErr)
}
