// Command coredns is the real node's cluster DNS: CoreDNS's own main with only the
// plugins the test cluster's Corefile uses, so the build leaves out the cloud
// back ends (scripts/testcluster runs it on the node's bridge address).
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins of the Corefile scripts/testcluster writes.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
