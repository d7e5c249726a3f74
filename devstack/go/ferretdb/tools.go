//go:build tools

// Package tools records the command this wrapper module builds, so `go mod tidy` keeps it.
package tools

import _ "github.com/FerretDB/FerretDB/cmd/ferretdb"
