package config

import _ "embed"

// DefaultYAML is kord's stock orderer.yaml: Fabric v2.5's layout and sample
// values, for the container image and `orderer dev`. Loading it with an empty
// environment gives Defaults() and no warnings.
//
//go:embed orderer.yaml
var DefaultYAML []byte
