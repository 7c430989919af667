package apachekafka

import (
	"encoding/base64"
	"strings"
	"testing"
)

// Kafka's StorageTool refuses "-t -…" (the value is read as an option), which failed one
// cluster start in 64 (one CI run in about six) before newClusterID kept IDs off '-'.
func TestNewClusterID(t *testing.T) {
	seen := map[string]bool{}
	for range 4096 {
		id := newClusterID()
		if strings.HasPrefix(id, "-") || strings.HasPrefix(id, "_") {
			t.Fatalf("cluster ID %q starts with %q", id, id[:1])
		}
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != 16 {
			t.Fatalf("cluster ID %q: %d bytes, %v", id, len(b), err)
		}
		if seen[id] {
			t.Fatalf("cluster ID %q twice", id)
		}
		seen[id] = true
	}
}
