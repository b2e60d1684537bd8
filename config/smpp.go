package config

// validateSMPP checks SMPP access of customers.
func (c *Config) validateSMPP() []error {
	return nil
}
