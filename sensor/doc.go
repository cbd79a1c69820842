// Package sensor owns the live node sensor: its configuration (YAML, validated with the key
// and line of every error) and, built on capture, workload and engine, the loop that watches
// network namespaces, captures each one and reports what it finds.
package sensor
