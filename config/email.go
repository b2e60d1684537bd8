package config

// validateEmail checks the email-to-SMS entry point.
func (c *Config) validateEmail() []error {
	return nil
}
