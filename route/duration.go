package route

import (
	"fmt"
	"time"
)

// ParseDuration parses a Gateway API duration (GEP-2257, the format of
// HTTPRoute timeouts): one to four parts, each 1 to 5 digits followed by
// "h", "m", "s" or "ms", largest unit first is not required ("1m30s",
// "500ms", "0s"). No sign, no fraction, no spaces.
func ParseDuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("%q is not a Gateway API duration (like \"500ms\", \"10s\", \"1m\")", s)
	}
	var d time.Duration
	parts := 0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j-i > 5 {
			return bad()
		}
		var n time.Duration
		for _, c := range s[i:j] {
			n = n*10 + time.Duration(c-'0')
		}
		var unit time.Duration
		switch {
		case j+1 < len(s) && s[j] == 'm' && s[j+1] == 's':
			unit, j = time.Millisecond, j+2
		case j < len(s) && s[j] == 'h':
			unit, j = time.Hour, j+1
		case j < len(s) && s[j] == 'm':
			unit, j = time.Minute, j+1
		case j < len(s) && s[j] == 's':
			unit, j = time.Second, j+1
		default:
			return bad()
		}
		d += n * unit
		parts++
		if parts > 4 {
			return bad()
		}
		i = j
	}
	if parts == 0 {
		return bad()
	}
	return d, nil
}

// durationField parses the duration at field (nil: def) and checks it
// against [lo, hi]; errors name the field.
func durationField(field string, v *string, def, lo, hi time.Duration) (time.Duration, error) {
	if v == nil {
		return def, nil
	}
	d, err := ParseDuration(*v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	if d < lo {
		return 0, fmt.Errorf("%s: %s is below the minimum %s", field, *v, fmtDuration(lo))
	}
	if d > hi {
		return 0, fmt.Errorf("%s: %s is above the maximum %s", field, *v, fmtDuration(hi))
	}
	return d, nil
}

// fmtDuration writes d in the Gateway API form ("500ms", "2s", "5m", "1h").
func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
