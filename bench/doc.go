// Package bench measures the gateway's message workflow against the bare
// cost of a workflow of the same shape on the same Temporal server, in one
// run: on a small machine the Temporal server, not the gateway's code, bounds
// throughput, so every figure is reported beside the floor and with the
// history events and workflow tasks per message.
//
//	go test ./bench -run '^$' -bench . -benchtime 2000x
package bench
