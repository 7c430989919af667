package kafka

import (
	"context"
	"fmt"
	"time"
)

// Retry runs fn at once and, while it fails, again every ShortInterval until
// ShortTotal has passed, then every LongInterval for a
// further LongTotal. It stops early when ctx ends or when fn returns an error
// marked by NonRetriable. A phase whose interval or total is not positive is
// skipped. The returned error names step and wraps fn's last error.
//
// Fabric panics when its schedule runs out; here the caller gets an error
// and decides (report unhealthy, try again later).
func Retry(ctx context.Context, p RetryPolicy, step string, fn func(ctx context.Context) error) error {
	start := time.Now()
	attempts := 0
	try := func() error {
		attempts++
		return fn(ctx)
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
	for _, ph := range phases {
		if ph.interval <= 0 || ph.total <= 0 {
			continue
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
		}
		t.Stop()
	}
	return fmt.Errorf("%s: gave up after %d attempts in %s: %w", step, attempts, time.Since(start).Round(time.Millisecond), lastErr)
}
