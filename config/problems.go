package config

import "fmt"

// problems collects the validation errors of a configuration, each led by
// its line when it has one.
type problems []error

// add notes a problem found at line (0: none known).
func (p *problems) add(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	*p = append(*p, fmt.Errorf("%s", msg))
}
