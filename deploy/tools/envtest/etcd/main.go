// Command etcd is the real etcd server of go.etcd.io/etcd/server/v3, built from Go modules for
// the cluster profile tests (controller-runtime's envtest runs it through TEST_ASSET_ETCD).
// It is the server module's main, unchanged.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
