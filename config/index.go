package config

// customerIndex finds customers without scanning the list. Parse builds it
// once per loaded configuration, after validation, so every key it holds is
// unique; a Config put together in code gets a fresh one on each lookup.
type customerIndex struct {
	byID       map[string]int // customer ID
	bySystemID map[string]int // smpp.systemId
	byAPIKey   map[string]int // hex SHA-256 of an API key
	byLogin    map[string]int // emailIngress.username
	bySender   map[string]int // emailIngress.allowedSenders of those that trust them, as senderKey gives them
	// numbers are the owners of each virtual number (by its digits, see
	// InboundNumber), in the order of the file.
	numbers map[string][]NumberOwner
	// smppCost and emailCost are the highest bcrypt costs among the
	// customers' SMPP and email ingress passwords (see loginMatches).
	smppCost, emailCost int
}

// NumberOwner is a customer owning a virtual number, for every message
// (Keyword "") or only for those whose first word is Keyword.
type NumberOwner struct {
	CustomerID string
	Keyword    string
}

func newCustomerIndex(customers []Customer) *customerIndex {
	x := &customerIndex{
		byID: map[string]int{}, bySystemID: map[string]int{}, byAPIKey: map[string]int{},
		byLogin: map[string]int{}, bySender: map[string]int{}, numbers: map[string][]NumberOwner{},
	}
	first := func(m map[string]int, key string, i int) {
		if _, taken := m[key]; !taken && key != "" {
			m[key] = i
		}
	}
	for i, cu := range customers {
		first(x.byID, cu.ID, i)
		x.smppCost = max(x.smppCost, bcryptCost(cu.SMPP.Password))
		x.emailCost = max(x.emailCost, bcryptCost(cu.EmailIngress.Password))
		if cu.Disabled {
			// Known by its ID (its messages in flight), by no credential.
			continue
		}
		first(x.bySystemID, cu.SMPP.SystemID, i)
		for _, k := range cu.APIKeys {
			if h, err := apiKeyHash(k); err == nil {
				first(x.byAPIKey, h, i)
			}
		}
		first(x.byLogin, cu.EmailIngress.Username, i)
		for _, s := range cu.EmailIngress.AllowedSenders {
			if key, ok := senderKey(s); ok && cu.EmailIngress.TrustEnvelopeSender {
				first(x.bySender, key, i)
			}
		}
		for _, n := range cu.Numbers {
			if d, ok := InboundNumber(n.Number); ok {
				x.numbers[d] = append(x.numbers[d], NumberOwner{CustomerID: cu.ID, Keyword: n.Keyword})
			}
		}
	}
	return x
}

// index returns the configuration's customer index.
func (c *Config) index() *customerIndex {
	if c.idx != nil {
		return c.idx
	}
	return newCustomerIndex(c.Customers)
}

// lookup returns the customer at m[key].
func (c *Config) lookup(m map[string]int, key string) (Customer, bool) {
	i, ok := m[key]
	if !ok {
		return Customer{}, false
	}
	return c.Customers[i], true
}

// Customer returns the customer with the given ID.
func (c *Config) Customer(id string) (Customer, bool) {
	return c.lookup(c.index().byID, id)
}

// CustomerBySystemID returns the customer whose smpp.systemId this is.
func (c *Config) CustomerBySystemID(systemID string) (Customer, bool) {
	return c.lookup(c.index().bySystemID, systemID)
}

// NumberOwners returns who owns a virtual number, given as the digits
// InboundNumber returns, in the order of the file.
func (c *Config) NumberOwners(digits string) []NumberOwner {
	return c.index().numbers[digits]
}

// SMPPLogin finds the customer whose smpp.systemId this is and checks the
// password: known says the system_id names a customer, ok that the password
// is its. A system_id that names no customer takes as long to refuse as a
// wrong password (see loginMatches).
func (c *Config) SMPPLogin(systemID, password string) (cu Customer, known, ok bool) {
	x := c.index()
	cu, known = c.lookup(x.bySystemID, systemID)
	return cu, known, loginMatches(cu.SMPP.Password, known, password, x.smppCost)
}
