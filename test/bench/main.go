// Command bench runs helmflux's benchmarks on real parts and prints each figure on
// a line of its own, "bench: <name> <value>", the unit being the name's suffix.
// -run selects benchmarks by a regular expression on their names.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// benchmark measures one or more figures and reports each through report.
type benchmark struct {
	// names lists every figure the benchmark reports, for -run and -list.
	names []string
	run   func(ctx context.Context, env environment, report func(name string, value float64)) error
}

// environment is what every benchmark may use.
type environment struct {
	root string // the repository root
	bin  string // ./bin with the control plane
}

var benchmarks = []benchmark{
	controlPlaneStart,
}

func main() {
	pattern := flag.String("run", ".", "Run only the benchmarks with a figure matching this regular expression.")
	list := flag.Bool("list", false, "List the figures and exit.")
	flag.Parse()

	root, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		fail(fmt.Errorf("-run: %w", err))
	}
	env := environment{root: root, bin: filepath.Join(root, "bin")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := runAll(ctx, env, re, *list, os.Stdout); err != nil {
		fail(err)
	}
}

func runAll(ctx context.Context, env environment, re *regexp.Regexp, list bool, out io.Writer) error {
	ran := 0
	for _, b := range benchmarks {
		if !matchesAny(re, b.names) {
			continue
		}
		if list {
			for _, n := range b.names {
				fmt.Fprintln(out, n)
			}
			continue
		}
		ran++
		err := b.run(ctx, env, func(name string, value float64) {
			if re.MatchString(name) {
				fmt.Fprintf(out, "bench: %s %s\n", name, format(value))
			}
		})
		if err != nil {
			return fmt.Errorf("benchmark %v: %w", b.names, err)
		}
	}
	if ran == 0 && !list {
		return fmt.Errorf("no benchmark matches %q", re)
	}
	return nil
}

func matchesAny(re *regexp.Regexp, names []string) bool {
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}

// format prints integers without a fraction and other values with two decimals.
func format(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
