package main

import (
	"context"
	"fmt"

	"github.com/kordhq/kord/orderer/server"
)

func init() {
	register("version", "print the version", func(context.Context, []string) error {
		fmt.Printf("kordctl (kord) %s\n", server.Version)
		return nil
	})
}
