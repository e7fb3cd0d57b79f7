package main

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// style colours words only when they go to a terminal and NO_COLOR is not
// set (https://no-color.org); pipes and files get plain text.
type style struct{ on bool }

func styleFor(w io.Writer) style {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return style{}
	}
	return style{on: term.IsTerminal(int(f.Fd()))}
}

func (s style) paint(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) red(t string) string    { return s.paint("31", t) }
func (s style) green(t string) string  { return s.paint("32", t) }
func (s style) yellow(t string) string { return s.paint("33", t) }
func (s style) bold(t string) string   { return s.paint("1", t) }

// status colours a workload or result status by what it means.
func (s style) status(st string) string {
	switch st {
	case "ready", "success", "succeeded":
		return s.green(st)
	case "error", "failed":
		return s.red(st)
	case "updating", "started", "skipped", "queued", "running":
		return s.yellow(st)
	}
	return st
}

// table writes aligned columns, two spaces apart. text/tabwriter counts
// the bytes of colour codes as width, so a coloured cell would push its
// row out of line: this table measures cells without them.
type table struct {
	w    io.Writer
	rows [][]string
}

func newTable(w io.Writer, noHeaders bool, header ...string) *table {
	t := &table{w: w}
	if !noHeaders && len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// width is how many columns a cell takes on a terminal.
func width(cell string) int { return utf8.RuneCountInString(ansi.ReplaceAllString(cell, "")) }

func (t *table) flush() error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], width(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-width(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	t.rows = nil
	_, err := io.WriteString(t.w, b.String())
	return err
}

// outputFlag adds -o/--output-format (tab or json), fluxctl's flag.
func outputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output-format", "o", "tab", "output format: tab (a table for people) or json (for scripts)")
}

// checkOutput refuses an output format other than tab and json.
func checkOutput(format string) error {
	if format != "tab" && format != "json" {
		return usageError("--output-format %q: want tab or json", format)
	}
	return nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isUsage reports whether a cobra error is about the command line.
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires ", "invalid argument", "flag needs an argument",
		"required flag(s)", "if any flags in the group", "at least one of the flags in the group"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}

// shortHash is a commit's first 7 hex digits.
func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
