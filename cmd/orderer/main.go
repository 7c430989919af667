// Command orderer is kord's ordering service daemon: a drop-in replacement for Hyperledger
// Fabric's Kafka-based orderer.
//
//	orderer [start]      run with orderer.yaml from $FABRIC_CFG_PATH and ORDERER_* variables
//	orderer version      print the version
//	orderer dev [flags]  run a self-contained ordering service (in-process Kafka, generated
//	                     crypto and genesis) for development
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/orderer/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "start"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "start":
		return start()
	case "version":
		fmt.Printf("orderer (kord):\n Version: %s\n Consensus: kafka\n", server.Version)
		return 0
	case "dev":
		return dev(args)
	case "help", "-h", "--help":
		fmt.Println("usage: orderer [start | version | dev [--dir DIR] [--listen ADDR] [--ops ADDR]]")
		return 0
	default:
		fmt.Fprintf(os.Stderr, "orderer: unknown command %q (want start, version or dev)\n", cmd)
		return 2
	}
}

// newLogger honours FABRIC_LOGGING_SPEC's default level (e.g. "info" or "debug:orderer.x=info").
func newLogger() *slog.Logger {
	level := slog.LevelInfo
	spec := os.Getenv("FABRIC_LOGGING_SPEC")
	for _, part := range strings.Split(spec, ":") {
		if strings.Contains(part, "=") || part == "" {
			continue
		}
		switch strings.ToLower(part) {
		case "debug":
			level = slog.LevelDebug
		case "info":
			level = slog.LevelInfo
		case "warn", "warning":
			level = slog.LevelWarn
		case "error", "panic", "fatal":
			level = slog.LevelError
		}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func start() int {
	log := newLogger()
	cfg, warnings, err := config.Load(os.Environ())
	if err != nil {
		log.Error("configuration", "err", err)
		return 1
	}
	for _, w := range warnings {
		log.Warn("configuration", "warning", w)
	}
	return serve(cfg, log, nil)
}

// serve runs an orderer until SIGINT or SIGTERM. ready, if set, runs once the server started.
func serve(cfg *config.TopLevel, log *slog.Logger, ready func(context.Context, *server.Server) error) int {
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("cannot start orderer", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start orderer", "err", err)
		srv.Stop()
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if ready != nil {
		if err := ready(ctx, srv); err != nil {
			log.Error("start-up", "err", err)
			srv.Stop()
			return 1
		}
	}
	<-ctx.Done()
	log.Info("stopping orderer")
	srv.Stop()
	return 0
}
