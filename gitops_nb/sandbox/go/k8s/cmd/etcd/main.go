// Command etcd is upstream etcd's server entry point, built from the
// published go.etcd.io/etcd/server/v3 module (the same call upstream's
// server/main.go makes).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
