// Package deploy holds no code of the sensor: its tests check the deployment artifacts next to
// it (the Helm chart, the container image, the Grafana dashboard) against the code, so that a
// renamed metric or a chart that no longer renders fails `go test`, not a cluster install.
package deploy
