package config

import (
	"fmt"
	"time"
)

// Retention is how long messages are kept when their customer does not say.
type Retention struct {
	// DefaultDays is how many days a message is kept after it was
	// accepted, in the event store and the reporting database, for
	// customers without retentionDays of their own; 0 keeps them for ever.
	DefaultDays int `yaml:"defaultDays"`
}

// MaxRetentionDays bounds retention settings (about 100 years).
const MaxRetentionDays = 36500

// RetentionFor returns how long a customer's messages are kept, and
// forever true when they are never purged. A customer not in the
// configuration (one since removed) has the default.
func (c *Config) RetentionFor(customerID string) (keep time.Duration, forever bool) {
	days := c.Retention.DefaultDays
	if cu, ok := c.Customer(customerID); ok && cu.RetentionDays != 0 {
		days = cu.RetentionDays
	}
	if days <= 0 {
		return 0, true
	}
	return time.Duration(days) * 24 * time.Hour, false
}

func (c *Config) validateRetention() []error {
	var errs []error
	if d := c.Retention.DefaultDays; d < 0 || d > MaxRetentionDays {
		errs = append(errs, fmt.Errorf("retention.defaultDays must be between 0 (keep for ever) and %d", MaxRetentionDays))
	}
	for _, cu := range c.Customers {
		if d := cu.RetentionDays; d < -1 || d > MaxRetentionDays {
			msg := fmt.Sprintf("customer %q: retentionDays must be between 1 and %d, 0 for retention.defaultDays or -1 to keep for ever", cu.ID, MaxRetentionDays)
			if cu.line > 0 {
				msg = fmt.Sprintf("line %d: %s", cu.line, msg)
			}
			errs = append(errs, fmt.Errorf("%s", msg))
		}
	}
	return errs
}
