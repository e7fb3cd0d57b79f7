package git

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// parseCommit reads the parts of a raw commit object a history walk needs,
// within bounds: only the tree, parent, author and committer headers are
// kept (each read up to maxHeaderLine bytes; other headers, such as
// signatures, are skipped without being held), and only the first
// maxMessageRead bytes of the message are looked at. Malformed content
// degrades instead of failing: a bad parent line makes the commit partial,
// a bad committer line leaves its time zero.
func parseCommit(h plumbing.Hash, rd io.Reader) (*commitNode, error) {
	br := bufio.NewReaderSize(rd, 4096)
	n := &commitNode{hash: h}
	for {
		line, err := readLine(br, maxHeaderLine)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(line) == 0 {
			if err != nil {
				return n, nil // no message
			}
			break // the blank line that ends the headers
		}
		name, value, _ := bytes.Cut(line, []byte{' '})
		switch string(name) {
		case "tree":
			n.tree, _ = parseHash(value)
		case "parent":
			p, ok := parseHash(value)
			if !ok || len(n.parents) == maxParents {
				n.partial = true
				break
			}
			n.parents = append(n.parents, p)
		case "author":
			var s object.Signature
			s.Decode(value)
			n.author = Signature{Name: truncate(s.Name, maxIdentity), Email: truncate(s.Email, maxIdentity)}
		case "committer":
			var s object.Signature
			s.Decode(value)
			n.time = s.When
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
	}
	msg, err := io.ReadAll(io.LimitReader(br, maxMessageRead+1))
	if err != nil {
		return nil, err
	}
	cut := len(msg) > maxMessageRead
	if cut {
		msg = msg[:maxMessageRead]
	}
	n.subject = subjectOf(msg)
	if !cut {
		n.trailers = parseTrailers(string(msg))
	}
	return n, nil
}

// readLine reads one line without its "\n", keeping at most limit bytes of
// it and discarding the rest. At the end of the input it returns what there
// was and io.EOF.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if room := limit - len(line); room > 0 {
			line = append(line, frag[:min(len(frag), room)]...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return line, err
		}
		return bytes.TrimSuffix(line, []byte{'\n'}), nil
	}
}

// parseHash reads a full lower-case hex SHA-1.
func parseHash(b []byte) (plumbing.Hash, bool) {
	if !isHash(string(b)) {
		return plumbing.ZeroHash, false
	}
	return plumbing.NewHash(string(b)), true
}

// subjectOf returns the first non-blank line of msg, cut at the first CR
// or LF and to maxSubject bytes.
func subjectOf(msg []byte) string {
	rest := msg
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if i := bytes.IndexByte(line, '\r'); i >= 0 {
			line = line[:i]
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			return string(truncateBytes(line, maxSubject))
		}
	}
	return ""
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence
// (copying the cut, so a long source can be freed).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}

// truncateBytes is truncate for bytes, without the copy.
func truncateBytes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}

// gitGeneratedPrefixes are the lines git itself writes into a trailer
// block; their presence relaxes the all-lines rule (see Trailer).
var gitGeneratedPrefixes = []string{"Signed-off-by: ", "(cherry picked from commit "}

// parseTrailers returns the trailers of msg's last paragraph, following git
// interpret-trailers (trailer.c: find_trailer_block_start and
// trailer_info_get) with the bounds documented on Trailer.
func parseTrailers(msg string) []Trailer {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	// The title is the first paragraph (after any leading blank lines) and
	// never holds trailers; title ends at the blank line after it.
	title := 0
	for title < len(lines) && isBlank(lines[title]) {
		title++
	}
	for title < len(lines) && !isBlank(lines[title]) {
		title++
	}
	end := len(lines)
	for end > title && isBlank(lines[end-1]) {
		end--
	}
	trailerLines, otherLines, continuations, generated := 0, 0, 0, false
	for i := end - 1; i >= title; i-- {
		l := lines[i]
		switch {
		case isBlank(l):
			otherLines += continuations
			if (generated && trailerLines*3 >= otherLines) || (trailerLines > 0 && otherLines == 0) {
				return blockTrailers(lines[i+1 : end])
			}
			return nil
		case strings.HasPrefix(l, "#"):
			otherLines += continuations
			continuations = 0
		case hasGitPrefix(l):
			trailerLines++
			continuations = 0
			generated = true
		case isTrailerLine(l):
			trailerLines++
			continuations = 0
		case l[0] == ' ' || l[0] == '\t':
			continuations++
		default:
			otherLines += 1 + continuations
			continuations = 0
		}
	}
	return nil
}

// blockTrailers extracts the trailers of a trailer block, unfolding
// continuation lines and skipping the lines that are not trailers.
func blockTrailers(block []string) []Trailer {
	var all []Trailer
	last := -1 // index in all of the trailer a continuation extends
	for _, l := range block {
		switch {
		case strings.HasPrefix(l, "#"):
			continue
		case last >= 0 && (l[0] == ' ' || l[0] == '\t'):
			all[last].Value = strings.TrimSpace(all[last].Value + " " + strings.TrimSpace(l))
			continue
		}
		last = -1
		if key, value, ok := splitTrailer(l); ok {
			all = append(all, Trailer{Key: key, Value: value})
			last = len(all) - 1
		}
	}
	var out []Trailer
	for _, t := range all {
		if len(out) == maxTrailers {
			break
		}
		if len(t.Value) <= maxTrailerValue {
			// Copies, so the message they were cut from can be freed.
			out = append(out, Trailer{Key: strings.Clone(t.Key), Value: strings.Clone(t.Value)})
		}
	}
	return out
}

// isBlank reports whether l holds only whitespace.
func isBlank(l string) bool { return strings.TrimSpace(l) == "" }

// hasGitPrefix reports whether l is a line git generates in trailer blocks.
func hasGitPrefix(l string) bool {
	for _, p := range gitGeneratedPrefixes {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// isTrailerLine reports whether l starts a trailer within the value bound.
func isTrailerLine(l string) bool {
	_, v, ok := splitTrailer(l)
	return ok && len(v) <= maxTrailerValue
}

// splitTrailer splits "Key: value" as git's find_separator does: a key of
// [A-Za-z0-9-]+ at the very start of the line, optional spaces or tabs,
// then the colon. The value is trimmed.
func splitTrailer(l string) (key, value string, ok bool) {
	i := 0
	for i < len(l) && isKeyByte(l[i]) {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	j := i
	for j < len(l) && (l[j] == ' ' || l[j] == '\t') {
		j++
	}
	if j == len(l) || l[j] != ':' {
		return "", "", false
	}
	return l[:i], strings.TrimSpace(l[j+1:]), true
}

// isKeyByte reports whether b may appear in a trailer key.
func isKeyByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-'
}
