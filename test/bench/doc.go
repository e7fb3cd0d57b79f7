// Package bench holds helmflux's benchmarks on real parts (the local control
// plane, real git repositories, the operator as a process). They run only under
// `make bench` (HELMFLUX_BENCH=1), which prints each figure on a line of its
// own, "bench: <name> <value>", the unit being the name's suffix;
// `make bench BENCH=<regexp>` runs only the benchmarks with a matching figure.
package bench
