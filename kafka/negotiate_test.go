package kafka

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kordhq/kord/kafka/embedded"
)

// kfakeRanges and kafka4Ranges are the ApiVersions answers of kfake and of
// Apache Kafka 4.0 for the request kinds that matter; kafka010Ranges is
// Kafka 0.10.2, kafka011Ranges Kafka 0.11.0.
var (
	kfakeRanges = map[int16]APIRange{
		apiProduce: {3, 13}, apiFetch: {4, 18}, apiListOffsets: {0, 10}, apiMetadata: {0, 13}, apiCreateTopics: {0, 7},
	}
	kafka4Ranges = map[int16]APIRange{
		apiProduce: {3, 12}, apiFetch: {4, 17}, apiListOffsets: {1, 9}, apiMetadata: {0, 12}, apiCreateTopics: {2, 7},
	}
	kafka010Ranges = map[int16]APIRange{
		apiProduce: {0, 2}, apiFetch: {0, 3}, apiListOffsets: {0, 1}, apiMetadata: {0, 2}, apiCreateTopics: {0, 1},
	}
	kafka011Ranges = map[int16]APIRange{
		apiProduce: {0, 3}, apiFetch: {0, 5}, apiListOffsets: {0, 2}, apiMetadata: {0, 4}, apiCreateTopics: {0, 2},
	}
)

func TestChooseVersion(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured sarama.KafkaVersion
		ranges     map[int16]APIRange
		want       sarama.KafkaVersion
		wantErr    bool
	}{
		{"fabric default vs kfake", sarama.V0_10_2_0, kfakeRanges, sarama.V1_0_0_0, false},
		{"fabric default vs kafka 4", sarama.V0_10_2_0, kafka4Ranges, sarama.V1_0_0_0, false},
		{"1.0 vs kfake", sarama.V1_0_0_0, kfakeRanges, sarama.V1_0_0_0, false},
		{"2.8.1 vs kfake", sarama.V2_8_1_0, kfakeRanges, sarama.V2_8_1_0, false},
		{"fabric default vs kafka 0.10.2", sarama.V0_10_2_0, kafka010Ranges, sarama.V0_10_2_0, false},
		{"2.8 vs kafka 0.10.2 lowers", sarama.V2_8_0_0, kafka010Ranges, sarama.V0_10_2_2, false},
		{"1.0 vs kafka 0.11 lowers", sarama.V1_0_0_0, kafka011Ranges, sarama.V0_11_0_2, false},
		{"0.10.2 vs kafka 0.11 kept", sarama.V0_10_2_0, kafka011Ranges, sarama.V0_10_2_0, false},
		{"no produce api", sarama.V1_0_0_0, map[int16]APIRange{apiFetch: {0, 10}}, sarama.KafkaVersion{}, true},
		{"broker too new for sarama", sarama.V1_0_0_0, map[int16]APIRange{
			apiProduce: {50, 60}, apiFetch: {50, 60}, apiListOffsets: {50, 60}, apiMetadata: {50, 60}, apiCreateTopics: {50, 60},
		}, sarama.KafkaVersion{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, err := ChooseVersion(tc.configured, tc.ranges)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %s", got)
				}
				if !IsNonRetriable(err) {
					t.Errorf("error should be non-retriable: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %s (%s), want %s", got, reason, tc.want)
			}
		})
	}
}

func TestParseVersionGarbage(t *testing.T) {
	for _, s := range []string{"banana", "", "1.0", "0.10.2", "v2.8.1"} {
		_, err := ParseVersion(s)
		if err == nil {
			t.Errorf("ParseVersion(%q): no error", s)
			continue
		}
		if !strings.Contains(err.Error(), `"`+s+`"`) || !IsNonRetriable(err) {
			t.Errorf("ParseVersion(%q): error should name the value and be non-retriable: %v", s, err)
		}
	}
	// Before any network I/O: a bad version with unreachable brokers
	// still reports the version.
	o := testOptions([]string{"127.0.0.1:1"})
	o.Version = "banana"
	_, err := NewSaramaConfig(testCtx(t, 5*time.Second), o)
	if err == nil || !strings.Contains(err.Error(), `"banana"`) {
		t.Fatalf("NewSaramaConfig with garbage version: %v", err)
	}
}

// TestNegotiatedVersionsWork produces and consumes through kfake with
// versions Fabric users configure. 0.10.2.0 alone would make sarama send
// produce v2, which kfake refuses.
func TestNegotiatedVersionsWork(t *testing.T) {
	c := startCluster(t, embedded.Config{Brokers: 1})
	for _, v := range []string{"0.10.2.0", "1.0.0", "2.8.1", "3.6.0"} {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			o := testOptions(c.Addrs())
			o.Version = v
			topic := "neg-" + strings.ReplaceAll(v, ".", "-")
			mustEnsure(t, ctx, o, topic, 1)
			p := mustProducer(t, ctx, o)
			for i := range 3 {
				off, err := p.Produce(ctx, topic, MarshalTimeToCut(uint64(i)))
				if err != nil {
					t.Fatalf("produce: %v", err)
				}
				if off != int64(i) {
					t.Fatalf("offset %d, want %d", off, i)
				}
			}
			cons := mustConsumer(t, ctx, o)
			pc, err := cons.ConsumePartition(ctx, topic, OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			recs := readN(t, ctx, pc, 3)
			for i, r := range recs {
				m, err := Unmarshal(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				if m.GetTimeToCut().GetBlockNumber() != uint64(i) {
					t.Fatalf("record %d: %v", i, m)
				}
			}
		})
	}
}

// TestRequestVersionsMatchSarama checks the produce and fetch version
// tables against what sarama really sends, as seen by the broker.
func TestRequestVersionsMatchSarama(t *testing.T) {
	c := startCluster(t, embedded.Config{Brokers: 1})
	var mu sync.Mutex
	seen := map[int16]int16{}
	kc := c.Kfake()
	kc.KeepControl()
	kc.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		if k := req.Key(); k == apiProduce || k == apiFetch {
			mu.Lock()
			seen[k] = req.GetVersion()
			mu.Unlock()
		}
		return nil, nil, false
	})
	for _, v := range []sarama.KafkaVersion{sarama.V1_0_0_0, sarama.V1_1_0_0, sarama.V2_0_0_0, sarama.V2_1_0_0, sarama.V2_4_0_0, sarama.V2_8_0_0, sarama.V3_7_0_0} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			o := testOptions(c.Addrs())
			o.Version = v.String()
			topic := "ver-" + strings.ReplaceAll(v.String(), ".", "-")
			mustEnsure(t, ctx, o, topic, 1)
			mu.Lock()
			clear(seen)
			mu.Unlock()
			p := mustProducer(t, ctx, o)
			if _, err := p.Produce(ctx, topic, MarshalConnect()); err != nil {
				t.Fatal(err)
			}
			cons := mustConsumer(t, ctx, o)
			pc, err := cons.ConsumePartition(ctx, topic, 0)
			if err != nil {
				t.Fatal(err)
			}
			readN(t, ctx, pc, 1)
			mu.Lock()
			defer mu.Unlock()
			if got, want := seen[apiProduce], produceVersion(v); got != want {
				t.Errorf("produce version %d, table says %d", got, want)
			}
			if got, want := seen[apiFetch], fetchVersion(v); got != want {
				t.Errorf("fetch version %d, table says %d", got, want)
			}
		})
	}
}

// TestUnnegotiatedOldVersionFails records the trap negotiation avoids: a
// plain sarama producer configured for 0.10.2.0 cannot write to kfake.
func TestUnnegotiatedOldVersionFails(t *testing.T) {
	c := startCluster(t, embedded.Config{Brokers: 1})
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())
	mustEnsure(t, ctx, o, "trap", 1)
	conf, err := baseConfig(o.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	conf.Version = sarama.V0_10_2_0
	sp, err := sarama.NewSyncProducer(c.Addrs(), conf)
	if err != nil {
		t.Logf("sarama 0.10.2.0 client did not even start: %v", err)
		return
	}
	defer func() { _ = sp.Close() }()
	start := time.Now()
	_, _, err = sp.SendMessage(&sarama.ProducerMessage{Topic: "trap", Value: sarama.ByteEncoder("x")})
	if err == nil {
		t.Fatal("produce v2 unexpectedly accepted; negotiation may be unnecessary now")
	}
	t.Logf("sarama with 0.10.2.0 failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("unexpected")
	}
}
