//go:build apachekafka

package apachekafka

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func home(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h, err := Install(ctx, root, os.Stderr)
	if err != nil {
		t.Fatalf("Apache Kafka is not installed: %v", err)
	}
	return h
}

func TestClusterModes(t *testing.T) {
	h := home(t)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{KRaft, ZooKeeper} {
		t.Run(mode.String(), func(t *testing.T) {
			began := time.Now()
			ctx := context.Background()
			home := h
			if mode == KRaft {
				// A relative Home works too (the JVMs run in their own directories).
				if home, err = filepath.Rel(cwd, h); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Start(ctx, Config{Home: home, Dir: t.TempDir(), Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			t.Logf("%s cluster up in %v: %v", mode, time.Since(began).Round(time.Millisecond), c.Addrs())
			c.Broker(1).Kill()
			if c.Broker(1).Running() {
				t.Fatal("broker still running after Kill")
			}
			began = time.Now()
			if err := c.Broker(1).Start(ctx); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := c.WaitHealthy(wctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("broker restarted in %v", time.Since(began).Round(time.Millisecond))
		})
	}
}
