package route

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// regex is a compiled RegularExpression match with a prefilter: the
// literals every match must contain. Go's regexp runs in time linear in
// the input but at some 3-10 ns per byte and instruction thread (no DFA),
// so 100 regex routes over a 30 KB path cost ~100 ms; a substring search
// for the required literals (memchr-speed) rules out most routes first.
type regex struct {
	*regexp.Regexp
	lits []string // each must occur in the input for a match; longest first
}

// MatchString reports whether s matches, trying the literals first.
func (x *regex) MatchString(s string) bool {
	return x.mayMatch(s) && x.Regexp.MatchString(s)
}

// mayMatch reports whether the prefilter lets s through (the regex would
// then have to run).
func (x *regex) mayMatch(s string) bool {
	for _, l := range x.lits {
		if !strings.Contains(s, l) {
			return false
		}
	}
	return true
}

// compileRegex compiles an RE2 pattern within the length limit.
func compileRegex(p string) (*regex, error) {
	if len(p) > MaxRegexLen {
		return nil, fmt.Errorf("is longer than %d bytes", MaxRegexLen)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("%q does not compile: %s", p, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	x := &regex{Regexp: re}
	if t, err := syntax.Parse(p, syntax.Perl); err == nil {
		x.lits = requiredLiterals(t.Simplify(), nil)
	}
	return x, nil
}

// requiredLiterals appends to out the case-sensitive literals that every
// string matching t contains (a conservative subset: concatenations,
// repetitions of at least one, groups). Longer literals filter better:
// at most 3 are kept, longest first, each of 2 bytes or more.
func requiredLiterals(t *syntax.Regexp, out []string) []string {
	var walk func(t *syntax.Regexp)
	add := func(l string) {
		// U+FFFD also matches an invalid byte of the input: not a literal
		if len(l) >= 2 && !strings.ContainsRune(l, utf8.RuneError) {
			out = append(out, l)
		}
	}
	walk = func(t *syntax.Regexp) {
		switch t.Op {
		case syntax.OpLiteral:
			if t.Flags&syntax.FoldCase == 0 {
				add(string(t.Rune))
			}
		case syntax.OpCapture, syntax.OpPlus:
			walk(t.Sub[0])
		case syntax.OpRepeat:
			if t.Min >= 1 {
				walk(t.Sub[0])
			}
		case syntax.OpConcat:
			// adjacent literals form one longer literal
			var run strings.Builder
			for _, s := range t.Sub {
				if s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 {
					run.WriteString(string(s.Rune))
					continue
				}
				add(run.String())
				run.Reset()
				walk(s)
			}
			add(run.String())
		}
	}
	walk(t)
	// longest first, at most 3
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if len(out) > 3 {
		out = out[:3]
	}
	return out
}
