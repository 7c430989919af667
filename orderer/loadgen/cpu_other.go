//go:build !unix

package loadgen

import "time"

// processCPU is not measured here: Report.ClientCPU stays 0.
func processCPU() time.Duration { return 0 }
