// Command upstream is the demo and test upstream: it serves HTTP on one or
// more loopback addresses and answers every request with who it is and
// what it received, so routing can be checked from the outside.
//
//	upstream -listen 127.0.0.1:9001=api-v1 -listen 127.0.0.1:9002=api-v2
//
// Every response has the header X-Upstream: <name> and a JSON body
// {"upstream","method","url","host","headers"}. The request header
// X-Want-Cache-Control sets the response's Cache-Control (default
// "no-store"); X-Want-Status sets the status.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

type listenFlag []string

func (l *listenFlag) String() string     { return strings.Join(*l, ",") }
func (l *listenFlag) Set(v string) error { *l = append(*l, v); return nil }

func handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdrs := map[string][]string{}
		for k, v := range r.Header {
			hdrs[strings.ToLower(k)] = v
		}
		cc := r.Header.Get("X-Want-Cache-Control")
		if cc == "" {
			cc = "no-store"
		}
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("X-Upstream", name)
		w.Header().Set("Content-Type", "application/json")
		for _, v := range r.Header.Values("X-Want-Set-Cookie") {
			w.Header().Add("Set-Cookie", v)
		}
		status := http.StatusOK
		if s, err := strconv.Atoi(r.Header.Get("X-Want-Status")); err == nil && s >= 200 && s < 600 {
			status = s
		}
		w.WriteHeader(status)
		if r.Method == http.MethodHead {
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"upstream": name, "method": r.Method, "url": r.RequestURI,
			"host": r.Host, "headers": hdrs,
		})
	})
}

func main() {
	var listens listenFlag
	flag.Var(&listens, "listen", "ADDR:PORT=NAME to serve (repeatable)")
	flag.Parse()
	if len(listens) == 0 {
		fmt.Fprintln(os.Stderr, "upstream: at least one -listen ADDR:PORT=NAME is needed")
		os.Exit(2)
	}
	for _, l := range listens {
		addr, name, ok := strings.Cut(l, "=")
		if !ok {
			name = addr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatalf("upstream: listen %s: %v", addr, err)
		}
		go func() { _ = http.Serve(ln, handler(name)) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
