// healthpeer: the peer events-service's gRPC core server is measured against
// in bench/run.sh — a minimal grpc-go server serving only the standard
// grpc.health.v1 health service (google.golang.org/grpc/health), with
// grpc-go's defaults. It prints the bound address on stdout and stops
// gracefully on SIGTERM/SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "TCP listen address")
	flag.Parse()

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "healthpeer: %v\n", err)
		os.Exit(1)
	}
	srv := grpc.NewServer()
	hs := health.NewServer() // "" is SERVING from the start
	healthpb.RegisterHealthServer(srv, hs)
	fmt.Println(lis.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		hs.Shutdown()
		srv.GracefulStop()
	}()
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "healthpeer: %v\n", err)
		os.Exit(1)
	}
}
