// Package archtest holds the test that keeps the import graph to the layers
// docs/architecture.md describes.
package archtest
