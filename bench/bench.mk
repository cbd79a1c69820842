# Side-by-side throughput benchmark (minerguard replay vs Suricata 7 + ET Open
# coin-miner rules); included from the top-level Makefile. See bench/README.md.

.PHONY: bench bench-quick bench-gen bench-go

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
