// Package lifecycle is the outside of the gateway's workflows: everything
// that starts, signals, updates or reads them from the entry points and the
// connectors, and nothing that runs inside them.
//
//   - Service accepts messages from every entry point (REST, gRPC, SMPP,
//     email): it validates them, applies idempotency keys, starts their
//     workflows and answers only once a message is durable in Temporal; it
//     also cancels and replaces messages not yet sent (workflow updates).
//   - Reader reads a message from the reporting database, or from Temporal
//     while its row is not written yet.
//   - StartInbound starts the workflows of mobile-originated messages.
//   - TemporalSignaler hands matched delivery receipts to their workflows.
//   - Redeliverer starts the redelivery of failed notifications.
package lifecycle
