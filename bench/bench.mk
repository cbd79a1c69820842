# Benchmarks, included from the top-level Makefile (see bench/README.md): the side-by-side
# replay benchmark (minerguard replay vs Suricata 7 + ET Open coin-miner rules) and the live
# one (bench-live: the sensor under node load, root only), and the flood figures of issue 14
# (bench-flood).

.PHONY: bench bench-quick bench-gen bench-go bench-flood

bench: ## run the side-by-side benchmark
	bash bench/run.sh

bench-quick: ## the benchmark with one timed run per tool
	BENCH_QUICK=1 bash bench/run.sh

bench-gen: ## (re)generate the 2M-packet benchmark capture bench/out/mixed.pcap
	mkdir -p bench/out
	go run ./bench/gen -o bench/out/mixed.pcap 2> bench/out/mixed.pcap.summary
	cat bench/out/mixed.pcap.summary

bench-go: ## the Go micro-benchmarks: engine hot path, profile checks, XDP data path (root for xdp)
	go test -run '^$$' -bench . -benchmem ./engine ./profile ./flow ./protocols/... ./xdp

.PHONY: bench-live bench-live-quick

bench-live: ## live sensor under node load (root): flood with/without the sensor, Suricata, 110 namespaces
	go run ./bench/live

bench-live-quick: ## bench-live with a 4 s load and 20 namespaces
	BENCH_QUICK=1 go run ./bench/live

bench-flood: ## issue 14 flood figures: replay 1 M / 100 k flows with 6 miners, no-newline RSS, live cross-workload flood (root)
	bash bench/flood.sh
