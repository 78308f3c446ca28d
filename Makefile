# Each target is one documented command; .ci/run runs them all.
.PHONY: test interop fuzz soak bench cluster

test:
	go test -race ./...

interop:
	bash test/interop/run.sh

fuzz:
	bash test/fuzz.sh $(or $(FUZZTIME),5m)

soak:
	bash test/soak.sh -d $(or $(SOAK_SECONDS),1800)

bench:
	bash test/load/bench.sh -d $(or $(BENCH_SECONDS),10)

cluster:
	bash test/cluster/run.sh -d $(or $(CLUSTER_SECONDS),30)
