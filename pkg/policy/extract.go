package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkExtract validates an extract template against the filter and order it
// is used with. regexp.Expand silently expands an unknown group to "", which
// would rank every tag equal, so unknown groups are refused here.
func checkExtract(c *compiledFilter, o Order, tmpl string) error {
	if tmpl == "" {
		return nil
	}
	if !o.hasDirection() {
		return fmt.Errorf("extract applies to numeric and alphabetical order only, not %s", o)
	}
	if c.kind != FilterRegex {
		return fmt.Errorf("extract needs a regex filter to take submatches from, not %s", c.kind)
	}
	return checkTemplate(c.re, tmpl)
}

var errNoReference = errors.New("template names no group of the regex")

// checkTemplate parses tmpl the way regexp.Expand does and refuses
// references to groups re does not have, malformed references ('$' not
// followed by a name, which Expand would keep as a literal '$') and templates
// that reference no group at all.
func checkTemplate(re *regexp.Regexp, tmpl string) error {
	refs := 0
	for {
		i := strings.IndexByte(tmpl, '$')
		if i < 0 {
			break
		}
		tmpl = tmpl[i+1:]
		if strings.HasPrefix(tmpl, "$") {
			tmpl = tmpl[1:]
			continue
		}
		name, num, rest, ok := templateRef(tmpl)
		if !ok {
			return errors.New("template: '$' must be followed by a group name or number (or written $$)")
		}
		tmpl = rest
		switch {
		case num > re.NumSubexp():
			return fmt.Errorf("template: regex has no group %d", num)
		case num < 0 && re.SubexpIndex(name) < 0:
			return fmt.Errorf("template: regex has no group named %q", name)
		}
		refs++
	}
	if refs == 0 {
		return errNoReference
	}
	return nil
}

// templateRef mirrors the reference parser of regexp.Expand: a name of
// letters, digits and '_', optionally in braces; num is its group number,
// or -1 when it is not a plain decimal without leading zeros.
func templateRef(s string) (name string, num int, rest string, ok bool) {
	brace := strings.HasPrefix(s, "{")
	if brace {
		s = s[1:]
	}
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		i += n
	}
	if i == 0 {
		return "", 0, "", false
	}
	name = s[:i]
	if brace {
		if i >= len(s) || s[i] != '}' {
			return "", 0, "", false
		}
		i++
	}
	num = 0
	for j := 0; j < len(name); j++ {
		if name[j] < '0' || name[j] > '9' || num >= 1e8 {
			num = -1
			break
		}
		num = num*10 + int(name[j]-'0')
	}
	if name[0] == '0' && len(name) > 1 {
		num = -1
	}
	return name, num, s[i:], true
}
