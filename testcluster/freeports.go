package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// freePorts prints N distinct free TCP ports on 127.0.0.1, one per line, for
// scripts/testcluster (bash has no portable way to ask the kernel). All
// listeners stay open until every port is picked, so the N differ.
func freePorts() {
	n := 1
	if len(os.Args) > 1 {
		var err error
		if n, err = strconv.Atoi(os.Args[1]); err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "usage: seclab-testcluster free-ports [N]")
			os.Exit(2)
		}
	}
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer l.Close()
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
}
