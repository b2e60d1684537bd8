// Package interop tests the gateway's SMPP code against a third-party SMPP
// implementation, node-smpp (npm package smpp@0.5.1): the upstream client
// binds to a node-smpp SMSC (smsc.js), and a node-smpp ESME (esme.js) binds
// to the SMSC simulator. The connector's whole path also runs against
// smsc.js: its configuration parsed from YAML, transmitter+receiver pairs,
// the send activity and receipts matched through the event store (FerretDB
// from internal/testenv). The tests need Node.js; they install the npm
// package from package-lock.json on first run and skip when node is not
// installed.
package interop
