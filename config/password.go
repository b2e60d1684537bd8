package config

import (
	"crypto/subtle"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// PasswordMatches reports whether password matches a configured one:
// "bcrypt:<hash>", or, for development, "plain:<password>" (compared in
// constant time). Anything else matches nothing.
func PasswordMatches(configured, password string) bool {
	if hash, ok := strings.CutPrefix(configured, "bcrypt:"); ok {
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	if plain, ok := strings.CutPrefix(configured, "plain:"); ok {
		return subtle.ConstantTimeCompare([]byte(plain), []byte(password)) == 1
	}
	return false
}

// bcryptCost is the cost of a configured "bcrypt:<hash>" password, 0 for
// any other.
func bcryptCost(configured string) int {
	hash, ok := strings.CutPrefix(configured, "bcrypt:")
	if !ok {
		return 0
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0
	}
	return cost
}

// loginMatches checks a login against the account it names, if any, so
// that a login naming no account takes as long as a wrong password: a
// missing account, or one with a plain (development) password, has its
// password compared with a hash of nothing at cost, the highest bcrypt
// cost among the passwords of its kind (nothing when none is bcrypt).
func loginMatches(configured string, found bool, password string, cost int) bool {
	if found && bcryptCost(configured) > 0 {
		return PasswordMatches(configured, password)
	}
	if cost > 0 {
		_ = bcrypt.CompareHashAndPassword(dummyHash(cost), []byte(password))
	}
	return found && PasswordMatches(configured, password)
}

// dummyHashes are bcrypt hashes of nothing, by cost.
var dummyHashes sync.Map

func dummyHash(cost int) []byte {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("no such account"), cost)
	dummyHashes.Store(cost, h)
	return h
}
