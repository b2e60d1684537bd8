package smppserver

import (
	"fmt"
	"net"
	"net/netip"
)

// DefaultMaxBinds is a customer's bind limit per replica when its
// configuration sets none.
const DefaultMaxBinds = 10

// account is a customer's SMPP access as it was when a session bound.
type account struct {
	customerID string
	systemID   string
	tps        float64
	maxBinds   int
}

// authenticate finds the customer a bind names and checks its password and
// address. reason, for logs only, says why a bind was refused; the ESME is
// told nothing more than ESME_RBINDFAIL. An unknown system_id takes as long
// to refuse as a wrong password.
func (s *Server) authenticate(req bindRequest, remote net.Addr) (acc account, reason string, ok bool) {
	found, known, ok := s.deps.Config.Config().SMPPLogin(req.SystemID, req.Password)
	switch {
	case !known:
		return account{}, "unknown system_id", false
	case !ok:
		return account{}, "wrong password", false
	}
	if len(found.SMPP.AllowedIPs) > 0 && !allowedIP(found.SMPP.AllowedIPs, remote) {
		return account{}, fmt.Sprintf("address %s is not in allowedIps", remote), false
	}
	acc = account{customerID: found.ID, systemID: found.SMPP.SystemID, tps: found.TPS, maxBinds: found.SMPP.MaxBinds}
	if acc.maxBinds <= 0 {
		acc.maxBinds = DefaultMaxBinds
	}
	return acc, "", true
}

// allowedIP reports whether remote's address is one of allowed (addresses
// or CIDR prefixes; entries that do not parse match nothing).
func allowedIP(allowed []string, remote net.Addr) bool {
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, a := range allowed {
		if p, err := netip.ParsePrefix(a); err == nil && p.Contains(ip) {
			return true
		}
		if addr, err := netip.ParseAddr(a); err == nil && addr.Unmap() == ip {
			return true
		}
	}
	return false
}

// reserveBind counts a new bind of a customer against its limit on this
// replica and registers the session; reason says why it was refused.
func (s *Server) reserveBind(sess *session, acc account, kind bindKind) (reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return "the server is shutting down", false
	}
	set := s.bound[acc.customerID]
	if len(set) >= acc.maxBinds {
		return fmt.Sprintf("the customer already has %d binds on this replica (maxBinds %d)", len(set), acc.maxBinds), false
	}
	if set == nil {
		set = map[*session]struct{}{}
		s.bound[acc.customerID] = set
	}
	set[sess] = struct{}{}
	s.metrics.bound.WithLabelValues(acc.customerID, kind.String()).Inc()
	return "", true
}
