// Command kube-apiserver is the real Kubernetes API server of k8s.io/kubernetes, built from Go
// modules for the cluster profile tests (controller-runtime's envtest runs it through
// TEST_ASSET_KUBE_APISERVER). It is cmd/kube-apiserver's main, unchanged.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
